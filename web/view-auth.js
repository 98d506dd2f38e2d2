// Signing up, in (with a password or a provider), and the pages the e-mails link to: forgot,
// reset, verify.
import * as api from './api.js';
import { navigate } from './router.js';
import { h, page, field, bindForm, flashNext, formError, describe } from './ui.js';

const PASSWORD_HINT = '8 to 72 characters.';

/** Where to go after signing in: a page of the app ("/polls/42"), never another site. */
function nextPage(query) {
  const next = query.get('next') || '';
  return /^\/[a-z]/i.test(next) && !next.startsWith('/signin') ? next : '/polls';
}

export function signIn({ query }) {
  const form = bindForm(
    h('form', { class: 'card form' },
      field('E-mail address', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in'))),
    async ({ email, password }) => {
      await api.signIn(email, password);
      navigate(nextPage(query));
    });
  return page('Sign in', form, socialButtons(nextPage(query)),
    h('p', { class: 'aside' }, h('a', { href: '#/forgot' }, 'Forgot your password?')),
    h('p', { class: 'aside' }, 'New here? ', h('a', { href: `#/signup${query.get('next') ? `?next=${encodeURIComponent(query.get('next'))}` : ''}` }, 'Create an account')));
}

export function signUp({ query }) {
  const form = bindForm(
    h('form', { class: 'card form' },
      field('Name', { name: 'name', autocomplete: 'name', required: true, maxlength: '50' }, 'How others see you on the board and in polls.'),
      field('E-mail address', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: '8' }, PASSWORD_HINT),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create account'))),
    async ({ name, email, password }) => {
      await api.signUp(name, email, password);
      flashNext(`Welcome, ${api.user().name}! We sent a link to ${api.user().email} to confirm the address.`);
      navigate(nextPage(query));
    });
  return page('Create an account', form, socialButtons(nextPage(query)),
    h('p', { class: 'aside' }, 'Already have one? ', h('a', { href: '#/signin' }, 'Sign in')));
}

export function forgot() {
  const done = h('div', { class: 'card', hidden: true, role: 'status' });
  const form = bindForm(
    h('form', { class: 'card form' },
      h('p', {}, 'Enter the address of your account and we will send you a link to choose a new password.'),
      field('E-mail address', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Send the link'))),
    async ({ email }) => {
      await api.call('POST', '/auth/password/forgot', { json: { email }, auth: false });
      // The answer is the same whether or not the account exists, and so is this text.
      done.replaceChildren(
        h('p', {}, `If ${email} belongs to an account, a link to reset its password is on its way. It works for 30 minutes, once.`),
        h('p', {}, h('a', { href: '#/signin' }, 'Back to sign in')));
      form.hidden = true;
      done.hidden = false;
    });
  return page('Forgot your password?', form, done);
}

export function reset({ query }) {
  const token = query.get('token');
  if (!token) {
    return page('Choose a new password',
      h('p', {}, 'This page needs the link from the e-mail. ', h('a', { href: '#/forgot' }, 'Ask for a new link')));
  }
  const form = bindForm(
    h('form', { class: 'card form' },
      field('New password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: '8' }, PASSWORD_HINT),
      field('New password, again', { name: 'repeat', type: 'password', autocomplete: 'new-password', required: true }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Set the password'))),
    async ({ password, repeat }, formEl) => {
      if (password !== repeat) {
        formError(formEl, 'The two passwords differ.');
        return;
      }
      try {
        api.keepSession(await api.call('POST', '/auth/password/reset', { json: { token, password }, auth: false }));
      } catch (error) {
        if (error.code !== 'invalid_token') throw error;
        formError(formEl, describe(error));
        formEl.querySelector('.form-error').append(' ', h('a', { href: '#/forgot' }, 'Ask for a new link'));
        return;
      }
      flashNext('Your new password is set and you are signed in. Every other session has been signed out.');
      navigate('/polls');
    });
  return page('Choose a new password', form);
}

export async function verify({ query, signal }) {
  const token = query.get('token');
  if (!token) return page('Confirm your address', h('p', {}, 'This page needs the link from the e-mail.'));
  try {
    const user = await api.call('POST', '/auth/email/verify', { json: { token }, auth: false, signal });
    api.updateUser(user);
    return page('Address confirmed',
      h('p', { class: 'card success' }, `Thank you: ${user.email} is confirmed.`),
      h('p', {}, h('a', { href: api.signedIn() ? '#/account' : '#/signin' }, api.signedIn() ? 'Go to your account' : 'Sign in')));
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    return page('Confirm your address',
      h('p', { class: 'card form-error' }, describe(error)),
      h('p', {}, api.signedIn()
        ? h('a', { href: '#/account' }, 'Send a new link from your account')
        : 'Sign in and send a new link from your account.'));
  }
}

// --- Social sign-in: OpenID Connect's implicit flow ------------------------------------
//
// The provider's page signs the person in and sends the browser back to this app's root
// with the ID token in the fragment (#id_token=...&state=...), which no server sees. Before
// leaving, the app keeps {provider, state, nonce, purpose, returnTo} in sessionStorage: this
// tab only, gone with it, and readable only by this origin's script. `state` proves that an
// answer is for this tab's own request (an answer made elsewhere, say to slip someone else's
// account into this browser, is refused before anything is sent); `nonce`, which the
// provider copies into the token and auth checks, ties the token to this one request.

const ATTEMPT = 'memos.social';

/** "web" → "Web". */
export const providerLabel = (name) => name.charAt(0).toUpperCase() + name.slice(1);

/** 32 random bytes, base64url. */
function randomToken() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** "Continue with <Provider>" for each provider a browser can use (shown once the list is in). */
function socialButtons(returnTo) {
  const box = h('div', { class: 'card form', hidden: true });
  api.socialProviders().then((providers) => {
    box.replaceChildren(
      h('p', { class: 'hint' }, 'Or use an account you have elsewhere:'),
      h('div', { class: 'actions start' }, providers.map((provider) =>
        h('button', { type: 'button', class: 'secondary', onClick: () => startSocial(provider, 'signin', returnTo) },
          `Continue with ${providerLabel(provider.name)}`))));
    box.hidden = providers.length === 0;
  }, () => {}); // without the list, the password still works
  return box;
}

/** Leaves for the provider's page ('signin' or 'delete'); its answer comes back to finishSocial(). */
export function startSocial(provider, purpose, returnTo = '/polls') {
  const state = randomToken();
  const nonce = randomToken();
  sessionStorage.setItem(ATTEMPT, JSON.stringify({ provider: provider.name, state, nonce, purpose, returnTo }));
  const params = new URLSearchParams({
    response_type: 'id_token',
    client_id: provider.clientId,
    redirect_uri: `${location.origin}/`,
    scope: 'openid email profile',
    nonce,
    state,
    response_mode: 'fragment',
  });
  location.assign(`${provider.authorizationEndpoint}?${params}`);
}

/** A provider's answer ("#id_token=…", "#error=…"); the app's own routes start with "#/". */
export const isProviderAnswer = (hash) => hash.startsWith('#id_token=') || hash.startsWith('#error=');

/** The token's nonce claim, only to compare (auth verifies the token itself). */
function nonceOf(idToken) {
  try {
    const payload = atob(idToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(payload, (c) => c.charCodeAt(0)))).nonce;
  } catch {
    return undefined;
  }
}

/**
 * The provider's answer in location.hash: takes the token out of the address at once, checks
 * that it answers this tab's request, then signs in or deletes the account. Returns the page
 * to show next, its message queued.
 */
export async function finishSocial() {
  const answer = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, '', location.pathname + location.search);
  let attempt = null;
  try {
    attempt = JSON.parse(sessionStorage.getItem(ATTEMPT));
  } catch {
    // nothing usable kept: refused below
  }
  sessionStorage.removeItem(ATTEMPT); // one answer per request
  const deleting = attempt?.purpose === 'delete';
  const fail = (message) => {
    flashNext(message, 'error');
    return deleting ? '/account' : api.signedIn() ? '/polls' : '/signin';
  };
  if (!attempt || answer.get('state') !== attempt.state) {
    return fail('That answer from a sign-in provider is not for a request made here, so it was ignored. Please try again.');
  }
  const name = providerLabel(attempt.provider);
  if (answer.has('error')) {
    return fail(`${name} did not ${deleting ? 'confirm' : 'sign you in'}: ${answer.get('error_description') || answer.get('error')}`);
  }
  const idToken = answer.get('id_token') || '';
  if (nonceOf(idToken) !== attempt.nonce) {
    return fail(`The answer from ${name} is not for the request made here, so it was ignored. Please try again.`);
  }
  try {
    if (deleting) {
      await api.deleteAccount({ provider: attempt.provider, idToken });
      flashNext('Your account and everything in it are deleted.');
      return '/signup';
    }
    const created = await api.socialSignIn(attempt.provider, idToken, attempt.nonce);
    flashNext(created
      ? `Welcome, ${api.user().name}! Your new account signs in with ${name}.`
      : `Welcome back, ${api.user().name}.`);
    return attempt.returnTo;
  } catch (error) {
    return fail(describe(error));
  }
}
