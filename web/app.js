// The app's entry point: routes, the header's navigation, and rendering a page on every
// change of the hash.
import * as api from './api.js';
import { route, resolve, navigate } from './router.js';
import { h, page, describe, showQueued, flashNext } from './ui.js';
import { signIn, signUp, forgot, reset, verify, isProviderAnswer, finishSocial } from './view-auth.js';
import { account } from './view-account.js';
import { pollList, pollEditor, pollDetail } from './view-polls.js';
import { board, postEditor } from './view-board.js';
import { recordings, trash } from './view-recordings.js';

route('/signin', signIn);
route('/signup', signUp);
route('/forgot', forgot);
route('/reset', reset);
route('/verify', verify);
route('/account', account, { auth: true });
route('/polls', pollList);
route('/polls/new', pollEditor, { auth: true });
route('/polls/:id', pollDetail);
route('/board', board);
route('/board/new', postEditor, { auth: true });
route('/board/:id/edit', postEditor, { auth: true });
route('/recordings', recordings, { auth: true });
route('/recordings/trash', trash, { auth: true });

const main = document.getElementById('main');
const nav = document.getElementById('nav');

function renderNav(path) {
  const user = api.user();
  const links = [
    ['/polls', 'Polls'],
    ['/board', 'Board'],
    user && ['/recordings', 'Recordings'],
    user ? ['/account', user.name] : ['/signin', 'Sign in'],
  ].filter(Boolean);
  nav.replaceChildren(
    ...links.map(([href, label]) => {
      const current = path === href || path.startsWith(`${href}/`);
      return h('li', {}, h('a', { href: `#${href}`, 'aria-current': current ? 'page' : null }, label));
    }),
  );
}

let controller = null;
let currentRoute = null;

async function render() {
  // The page being left stops what it started (event streams, timers, requests).
  controller?.abort();
  controller = new AbortController();
  const { signal } = controller;
  // A sign-in provider sent the browser back with its answer (#id_token=…): that is no page,
  // and the token leaves the address before anything else happens.
  if (isProviderAnswer(location.hash)) {
    main.setAttribute('aria-busy', 'true');
    navigate(await finishSocial());
    return;
  }
  const match = resolve(location.hash || '#/polls');
  if (!match) {
    location.replace('#/polls');
    return;
  }
  if (match.auth && !api.signedIn()) {
    location.replace(`#/signin?next=${encodeURIComponent(location.hash.slice(1))}`);
    return;
  }
  currentRoute = match;
  renderNav(match.path);
  showQueued();
  main.setAttribute('aria-busy', 'true');
  let content;
  try {
    content = await match.view({ params: match.params, query: match.query, signal });
  } catch (error) {
    if (signal.aborted) return;
    content = page('Something went wrong', h('p', { class: 'form-error' }, describe(error)), h('p', {}, h('a', { href: '#/polls' }, 'Back to the polls')));
  }
  if (signal.aborted) return;
  main.replaceChildren(content);
  main.removeAttribute('aria-busy');
  // Start keyboard and screen-reader users at the new page's heading.
  const heading = main.querySelector('h1');
  document.title = heading ? `${heading.textContent} · Voice Memos` : 'Voice Memos';
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
  scrollTo(0, 0);
}

api.onSessionChange((reason) => {
  if (!currentRoute) return;
  // Ended by the API or by another tab (this page's own sign-out navigates by itself).
  if (currentRoute.auth && !api.signedIn() && (reason === 'expired' || reason === 'elsewhere')) {
    flashNext(reason === 'expired' ? 'Your session has ended. Please sign in again.' : 'You signed out in another tab.');
    navigate(`/signin?next=${encodeURIComponent(location.hash.slice(1))}`);
  } else {
    renderNav(currentRoute.path);
  }
});

// The skip link moves focus to the page without touching the hash (which is the route).
document.querySelector('.skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

// A link to the page already shown loads it again (a fresh list), as a person expects.
document.addEventListener('click', (event) => {
  const link = event.target.closest?.('a[href^="#/"]');
  if (link && link.getAttribute('href') === location.hash && !event.ctrlKey && !event.metaKey) {
    event.preventDefault();
    render();
  }
});

addEventListener('hashchange', render);
render();
