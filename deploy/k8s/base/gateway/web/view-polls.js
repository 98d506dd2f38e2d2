// Polls: the list, a new poll, and one poll with results that move live as anyone votes.
import * as api from './api.js';
import { navigate } from './router.js';
import { h, page, field, bindForm, pager, qs, notifyError, flashNext, confirmDialog, formError, fromNow, timeEl, plural, uid } from './ui.js';

const MAX_CANDIDATES = 50;
const pollPath = (id) => `/polls/${encodeURIComponent(id)}`;

/** Open, closing at some time, or closed, as words. */
function pollState(poll, now = Date.now()) {
  if (!poll.closesAt) return { open: true, label: 'Open', kind: 'ok' };
  const closes = Date.parse(poll.closesAt);
  if (closes <= now) return { open: false, label: `Closed ${fromNow(poll.closesAt, now)}`, kind: 'muted' };
  return { open: true, label: `Closes ${fromNow(poll.closesAt, now)}`, kind: 'warn' };
}

export async function pollList({ signal }) {
  const list = h('ul', { class: 'cards' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No polls yet.');
  const more = pager(async (cursor) => {
    const result = await api.call('GET', `/polls${qs({ limit: 20, cursor })}`, { signal });
    list.append(...result.items.map(pollCard));
    empty.hidden = list.childElementCount > 0;
    return result.nextCursor;
  });
  await more.start();
  const action = api.signedIn()
    ? h('a', { class: 'button primary', href: '#/polls/new' }, 'New poll')
    : h('a', { class: 'button secondary', href: '#/signin?next=/polls/new' }, 'Sign in to create a poll');
  return page('Polls', h('div', { class: 'toolbar' }, action), list, empty, more.el);
}

function pollCard(poll) {
  const state = pollState(poll);
  return h('li', { class: 'card poll-card' },
    h('h2', {}, h('a', { href: `#${pollPath(poll.id)}` }, poll.title)),
    h('p', { class: 'meta' },
      h('span', { class: `badge ${state.kind}` }, state.label), ' ',
      `${plural(poll.totalVotes, 'vote')} · ${plural(poll.candidates.length, 'option')} · created `, timeEl(poll.createdAt)));
}

// --- A new poll -------------------------------------------------------------------------

export function pollEditor() {
  const options = h('ol', { class: 'options' });
  const addButton = h('button', { type: 'button', class: 'secondary', onClick: () => addOption(true) }, 'Add an option');

  function renumber() {
    [...options.children].forEach((li, i) => {
      li.querySelector('label').textContent = `Option ${i + 1}`;
      const remove = li.querySelector('button');
      remove.hidden = options.childElementCount <= 2;
      remove.setAttribute('aria-label', `Remove option ${i + 1}`);
    });
    addButton.hidden = options.childElementCount >= MAX_CANDIDATES;
  }
  function addOption(focus) {
    const id = uid('opt');
    const input = h('input', { id, name: 'candidate', maxlength: '100', required: true });
    const li = h('li', { class: 'option' },
      h('label', { for: id }),
      h('div', { class: 'inline' }, input,
        h('button', { type: 'button', class: 'ghost', onClick: () => { li.remove(); renumber(); } }, 'Remove')));
    options.append(li);
    renumber();
    if (focus) input.focus();
  }
  addOption(false);
  addOption(false);

  const custom = field('Closing time', { name: 'closesAtLocal', type: 'datetime-local' });
  custom.hidden = true;
  const closes = field('Closes', {
    tag: 'select', name: 'closes',
    onChange: (e) => {
      custom.hidden = e.target.value !== 'custom';
      custom.querySelector('input').required = !custom.hidden;
    },
    options: [
      h('option', { value: '' }, 'Never: stays open'),
      h('option', { value: '3600' }, 'In 1 hour'),
      h('option', { value: '86400' }, 'In 1 day'),
      h('option', { value: '604800' }, 'In 1 week'),
      h('option', { value: 'custom' }, 'At a time I choose'),
    ],
  });

  const form = bindForm(
    h('form', { class: 'card form' },
      field('Question', { name: 'title', required: true, maxlength: '200', placeholder: 'Where do we eat on Friday?' }),
      h('fieldset', {}, h('legend', {}, 'Options (2 to 50)'), options, addButton),
      closes, custom,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create poll'))),
    async ({ title, closes: choice, closesAtLocal }, formEl) => {
      const candidates = [...formEl.querySelectorAll('[name=candidate]')].map((i) => i.value.trim()).filter(Boolean);
      let closesAt;
      if (choice === 'custom') closesAt = new Date(closesAtLocal); // local time, as the person typed it
      else if (choice) closesAt = new Date(Date.now() + Number(choice) * 1000);
      if (closesAt && !(closesAt > new Date())) {
        formError(formEl, 'The closing time must be in the future.');
        return;
      }
      const poll = await api.call('POST', '/polls', { json: { title, candidates, closesAt: closesAt?.toISOString() } });
      flashNext('Your poll is open. Share its address to let others vote.');
      navigate(pollPath(poll.id));
    });
  return page('New poll', form);
}

// --- One poll ---------------------------------------------------------------------------

export async function pollDetail({ params, signal }) {
  const path = pollPath(params.id);
  let poll = await api.call('GET', path, { signal });
  const me = api.user();

  const stateBadge = h('span', { class: 'badge' });
  const total = h('p', { class: 'total', 'aria-live': 'polite' });
  const live = h('span', { class: 'live', title: 'Counts update as people vote' }, 'Connecting…');
  const rows = h('ol', { class: 'results' });
  const actions = h('div', { class: 'actions' });

  const vote = (candidateId) => act(async () => {
    await api.call('POST', `${path}/votes`, { json: { candidateId } });
  });
  const takeBack = () => act(async () => {
    await api.call('DELETE', `${path}/votes/me`);
  });

  // A vote or its retraction, then the poll again (myVote and counts); the stream keeps the
  // counts moving after that. A conflict (voted elsewhere, closed meanwhile) is explained.
  let busy = false;
  async function act(change) {
    if (busy) return;
    busy = true;
    draw();
    try {
      await change();
    } catch (error) {
      notifyError(error);
    }
    try {
      poll = await api.call('GET', path, { signal });
    } catch (error) {
      if (error.name !== 'AbortError') notifyError(error);
    }
    busy = false;
    draw();
  }

  function draw() {
    const state = pollState(poll);
    stateBadge.className = `badge ${state.kind}`;
    stateBadge.textContent = state.label;
    total.textContent = plural(poll.totalVotes, 'vote');
    const canVote = state.open && me && !poll.myVote;
    rows.replaceChildren(...poll.candidates.map((c) => {
      const share = poll.totalVotes ? Math.round((c.voteCount / poll.totalVotes) * 100) : 0;
      const fill = h('div', { class: 'fill' });
      fill.style.width = `${share}%`; // CSSOM, not a style attribute: allowed by the CSP
      const mine = poll.myVote === c.id;
      return h('li', { class: `candidate${mine ? ' mine' : ''}`, 'data-candidate': c.id },
        h('div', { class: 'candidate-head' },
          h('span', { class: 'name' }, c.name),
          mine ? h('span', { class: 'badge ok' }, 'Your vote') : null,
          h('span', { class: 'count' }, `${plural(c.voteCount, 'vote')} · ${share}%`)),
        h('div', { class: 'bar', role: 'presentation' }, fill),
        canVote ? h('button', { type: 'button', class: 'secondary vote', disabled: busy, onClick: () => vote(c.id) }, `Vote for ${c.name}`) : null);
    }));
    const items = [];
    if (!me && state.open) items.push(h('a', { class: 'button primary', href: `#/signin?next=${encodeURIComponent(path)}` }, 'Sign in to vote'));
    if (me && poll.myVote && state.open) items.push(h('button', { type: 'button', class: 'secondary', disabled: busy, onClick: takeBack }, 'Take back my vote'));
    if (me && poll.createdBy === me.id) items.push(h('button', { type: 'button', class: 'danger', onClick: remove }, 'Delete poll'));
    actions.replaceChildren(...items);
  }

  // Live counts: the stream sends the counts at once, then whenever they change. It needs
  // no token; EventSource reconnects by itself after a break.
  const events = new EventSource(`${path}/events`);
  events.addEventListener('open', () => { live.textContent = 'Live'; live.classList.add('on'); });
  events.addEventListener('error', () => { live.textContent = 'Reconnecting…'; live.classList.remove('on'); });
  events.addEventListener('counts', (event) => {
    const counts = JSON.parse(event.data);
    const byId = new Map(counts.candidates.map((c) => [c.id, c.voteCount]));
    poll = { ...poll, totalVotes: counts.totalVotes, candidates: poll.candidates.map((c) => ({ ...c, voteCount: byId.get(c.id) ?? c.voteCount })) };
    draw();
  });
  // "Closes in ..." moves on by itself, and voting ends when the time comes.
  const tick = setInterval(draw, 15_000);
  const closesIn = poll.closesAt ? Date.parse(poll.closesAt) - Date.now() : -1;
  const closing = closesIn > 0 && closesIn < 2 ** 31 - 1 ? setTimeout(draw, closesIn + 500) : null;
  signal.addEventListener('abort', () => {
    events.close();
    clearInterval(tick);
    clearTimeout(closing);
  });

  async function remove() {
    if (!(await confirmDialog(`Delete the poll "${poll.title}" with all its votes?`))) return;
    events.close();
    try {
      await api.call('DELETE', path);
      flashNext('The poll is deleted.');
      navigate('/polls');
    } catch (error) {
      notifyError(error);
    }
  }

  draw();
  return page(poll.title,
    h('p', { class: 'meta' }, stateBadge, ' ', live, ' · created ', timeEl(poll.createdAt)),
    h('div', { class: 'card' }, rows, total, actions),
    h('p', {}, h('a', { href: '#/polls' }, 'All polls')));
}
