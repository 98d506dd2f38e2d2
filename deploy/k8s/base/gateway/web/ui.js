// Small DOM helpers shared by the views. Text always goes in as text nodes: nothing here
// (or anywhere in the app) parses a string as HTML, so what people type is shown as typed.

/**
 * h('a', {href: '#/polls', class: 'x', onClick: fn}, 'text', child, [more]) → an element.
 * Strings become text nodes; null/false children and props are skipped; on* props are
 * event listeners; booleans and numbers set properties (hidden, disabled, tabIndex).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === 'class') el.className = value;
    else if (key === 'value') el.value = value;
    else if (typeof value !== 'string' && key in el) el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A page: its h1 (focused after navigation), a first child of class "toolbar" beside it, the content. */
export function page(title, ...children) {
  const toolbar = children[0] instanceof Element && children[0].classList.contains('toolbar') ? children.shift() : null;
  return h('section', { class: 'page' }, h('div', { class: 'page-head' }, h('h1', {}, title), toolbar), ...children);
}

/** An error in words: the problem's detail, with the request id when it was unexpected. */
export function describe(error) {
  if (error?.name !== 'ApiError') return error?.message || String(error);
  return error.unexpected && error.requestId ? `${error.message} (request id ${error.requestId})` : error.message;
}

// --- Messages -------------------------------------------------------------------------

const flashEl = () => document.getElementById('flash');
let queued = null;

/** Tells the person something now, in the status area (announced by screen readers). */
export function notify(message, kind = 'info') {
  const el = flashEl();
  el.className = `flash ${kind}`;
  el.replaceChildren(h('p', {}, message));
  el.hidden = false;
}
export const notifyError = (error) => notify(describe(error), 'error');

/** A message for the page about to be shown (before navigate()). */
export function flashNext(message, kind = 'info') {
  queued = { message, kind };
}

/** Called on every navigation: shows the queued message, or clears the last one. */
export function showQueued() {
  const el = flashEl();
  if (queued) notify(queued.message, queued.kind);
  else {
    el.hidden = true;
    el.replaceChildren();
  }
  queued = null;
}

// --- Forms ----------------------------------------------------------------------------

let ids = 0;
export const uid = (prefix = 'id') => `${prefix}-${++ids}`;

/** A labelled input: field('Email', {name: 'email', type: 'email'}, 'hint'). tag: 'textarea', 'select'. */
export function field(label, { tag = 'input', options, ...props }, hint) {
  const id = uid('f');
  const control = h(tag, { id, ...props }, options || []);
  const parts = [h('label', { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute('aria-describedby', hintId);
    parts.push(h('p', { class: 'hint', id: hintId }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/**
 * Runs `action(values, form)` on submit: the button is busy meanwhile; an error shows above
 * the buttons (role=alert), and each field error of a 400 next to its field.
 */
export function bindForm(form, action) {
  const box = h('p', { class: 'form-error', role: 'alert', hidden: true, tabIndex: -1 });
  form.append(box);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const submit = form.querySelector('[type=submit]');
    for (const old of form.querySelectorAll('.field-error')) old.remove();
    for (const old of form.querySelectorAll('[aria-invalid]')) old.removeAttribute('aria-invalid');
    box.hidden = true;
    if (submit) submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      await action(Object.fromEntries(new FormData(form)), form);
    } catch (error) {
      if (error.name === 'AbortError') return;
      showFormError(form, box, error);
    } finally {
      if (submit) submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  return form;
}

function showFormError(form, box, error) {
  const unplaced = [];
  for (const { field: name, message } of error.errors || []) {
    const control = name && form.elements.namedItem(name);
    if (control instanceof HTMLElement && control.closest('.field')) {
      const id = uid('err');
      control.setAttribute('aria-invalid', 'true');
      control.setAttribute('aria-describedby', `${control.getAttribute('aria-describedby') || ''} ${id}`.trim());
      control.closest('.field').append(h('p', { class: 'field-error', id }, sentence(message)));
    } else {
      unplaced.push(`${name}: ${message}`);
    }
  }
  box.replaceChildren(describe(error), ...unplaced.map((text) => h('span', { class: 'detail' }, text)));
  box.hidden = false;
  const invalid = form.querySelector('[aria-invalid=true]');
  (invalid || box).focus?.();
}

/** Shows an error inside a form's error box from outside bindForm (a client-side check). */
export function formError(form, message) {
  const box = form.querySelector('.form-error');
  box.replaceChildren(message);
  box.hidden = false;
}

// --- Lists ----------------------------------------------------------------------------

/**
 * A "Load more" list: fetchPage(cursor) appends its items and returns the next cursor.
 * start() loads the first page (its errors are the page's); the button loads the rest.
 */
export function pager(fetchPage) {
  let cursor = null;
  const button = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  button.addEventListener('click', async () => {
    button.disabled = true;
    error.hidden = true;
    try {
      cursor = await fetchPage(cursor);
      button.hidden = !cursor;
    } catch (e) {
      if (e.name === 'AbortError') return;
      error.textContent = describe(e);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  return {
    el: h('div', { class: 'pager' }, error, button),
    async start() {
      cursor = await fetchPage(null);
      button.hidden = !cursor;
    },
  };
}

/** A query string from the set values: qs({limit: 20, cursor: null}) → "?limit=20". */
export function qs(values) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value != null && value !== '') params.set(key, value);
  const text = params.toString();
  return text ? `?${text}` : '';
}

// --- Dialogs --------------------------------------------------------------------------

/** A modal yes/no question (the native <dialog>: focus stays inside, Escape cancels). */
export function confirmDialog(message, { confirm = 'Delete', danger = true } = {}) {
  return new Promise((resolve) => {
    const textId = uid('dlg');
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': textId });
    const no = h('button', { type: 'button', class: 'secondary', onClick: () => dialog.close('no') }, 'Cancel');
    const yes = h('button', { type: 'button', class: danger ? 'danger' : 'primary', onClick: () => dialog.close('yes') }, confirm);
    dialog.append(h('p', { id: textId }, message), h('div', { class: 'actions' }, no, yes));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'yes');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

// --- Formatting -----------------------------------------------------------------------

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const UNITS = [
  ['year', 365 * 86400],
  ['month', 30 * 86400],
  ['week', 7 * 86400],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

/** "3 minutes ago", "in 2 hours", "tomorrow" (for a day less a few seconds, too). */
export function fromNow(time, now = Date.now()) {
  const seconds = (new Date(time).getTime() - now) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size * 0.95 || unit === 'second') return relative.format(Math.round(seconds / size), unit);
  }
  return '';
}

export const formatDate = (time) => new Date(time).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** A <time> element with the relative time, and the exact one as its tooltip. */
export const timeEl = (time) => h('time', { datetime: time, title: formatDate(time) }, fromNow(time));

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function formatClock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** "1 vote", "2 votes". */
export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
