// The one way the app talks to the backend: JSON calls, uploads with progress, the session.
//
// Where the tokens live, and why:
// The API hands out tokens in JSON bodies and takes them only as `Authorization: Bearer`
// (no cookies), so the app has to hold them in JavaScript. The session (access token, its
// expiry, refresh token, user) is kept in localStorage, so that a reload or a second tab
// stays signed in. Whatever runs script in this origin could read it: that is what the
// gateway's strict Content-Security-Policy (scripts only from this origin, no inline
// script) and the app's rule of inserting user text only as text (never as HTML) guard
// against. The access token lives 15 minutes and is refreshed a minute before it runs out
// (and once after a 401); the refresh token is single use, so a stolen one that is used
// makes the API end every session of the user at the next legitimate refresh. Tabs refresh
// one at a time (Web Locks): two tabs presenting the same refresh token would look like theft.

const KEY = 'memos.session';
const MARGIN_MS = 60_000; // refresh this long before the access token expires

/** An API error: the problem+json body (RFC 9457) with the status and request id. */
export class ApiError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || 'Something went wrong.');
    this.name = 'ApiError';
    this.status = problem.status ?? 0;
    this.code = problem.code || '';
    this.requestId = problem.requestId || '';
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }

  /** Not a rule the person broke (a 5xx, no connection): worth quoting the request id. */
  get unexpected() {
    return this.status === 0 || this.status >= 500;
  }
}

const offline = () => new ApiError({ status: 0, detail: 'Could not reach the server. Check the connection and try again.' });

// --- The session --------------------------------------------------------------------

function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY));
  } catch {
    return null;
  }
}

const listeners = new Set();
/**
 * fn(reason) runs when the session changes: 'signin', 'user' (renamed, refreshed), 'signout' and
 * 'deleted' (by this page), 'expired' (the API refused to refresh it), 'elsewhere' (another tab
 * signed out).
 */
export function onSessionChange(fn) {
  listeners.add(fn);
}
function emit(reason) {
  for (const fn of listeners) fn(reason);
}

export const signedIn = () => load() !== null;
export const user = () => load()?.user ?? null;

/** Keeps a session as the API sends it (sign-up, sign-in, refresh, password reset). */
export function keepSession(session, reason = 'signin') {
  const { user, accessToken, refreshToken, expiresIn } = session;
  localStorage.setItem(KEY, JSON.stringify({ user, accessToken, refreshToken, expiresAt: Date.now() + expiresIn * 1000 }));
  schedule();
  if (reason) emit(reason);
}

/** After a rename or a verified address: the stored user, so the header shows it. */
export function updateUser(next) {
  const s = load();
  if (!s || s.user.id !== next.id) return;
  localStorage.setItem(KEY, JSON.stringify({ ...s, user: next }));
  emit('user');
}

export function forgetSession(reason = 'signout') {
  localStorage.removeItem(KEY);
  clearTimeout(timer);
  emit(reason);
}

// Another tab signed in, out, or refreshed: follow it.
addEventListener('storage', (event) => {
  if (event.key !== KEY && event.key !== null) return;
  schedule();
  emit(load() ? 'user' : 'elsewhere');
});

// Refresh a little before expiry while the page is open, so the next click does not wait.
let timer;
function schedule() {
  clearTimeout(timer);
  const s = load();
  if (s) timer = setTimeout(() => accessToken().catch(() => {}), Math.max(1000, s.expiresAt - MARGIN_MS - Date.now() + 1000));
}
schedule();

let refreshing = null;
/** A fresh access token in place of `stale` (null when the session has ended). */
function refresh(stale) {
  refreshing ??= exclusive(async () => {
    const s = load();
    if (!s) return null;
    // Another tab (or an earlier call) refreshed while this one waited: its token is good.
    if (s.accessToken !== stale && s.expiresAt - Date.now() > MARGIN_MS) return s.accessToken;
    let res;
    try {
      res = await fetch('/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refreshToken: s.refreshToken }),
      });
    } catch {
      throw offline();
    }
    if (res.status === 401) {
      // Revoked, expired or reused: this session is over.
      forgetSession('expired');
      return null;
    }
    const session = await parse(res); // a 429 or 5xx keeps the session for the next try
    keepSession(session, null);
    return session.accessToken;
  }).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

// One refresh at a time across tabs where the browser has Web Locks (secure contexts).
const exclusive = (fn) => (navigator.locks ? navigator.locks.request('memos.refresh', fn) : fn());

async function accessToken() {
  const s = load();
  if (!s) return null;
  if (s.expiresAt - Date.now() > MARGIN_MS) return s.accessToken;
  return refresh(s.accessToken);
}

// --- Calls ----------------------------------------------------------------------------

async function parse(res) {
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json().catch(() => null) : null;
  if (res.ok) return data;
  throw new ApiError({
    status: res.status,
    requestId: res.headers.get('X-Request-ID'),
    detail: res.statusText || `The server answered ${res.status}.`,
    ...(data || {}),
  });
}

async function send(method, path, { json, form, token, signal }) {
  const headers = { Accept: 'application/json' };
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    body = form; // the browser writes the multipart boundary
  }
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(path, { method, headers, body, signal, cache: 'no-store' });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw offline();
  }
}

/**
 * call('GET', '/polls', {signal}) → the parsed JSON (null for 202/204), or throws ApiError.
 * Options: json (a body), form (FormData), auth (false: never send the token), signal.
 * The token goes with every call when signed in; a 401 refreshes it once and retries.
 */
export async function call(method, path, options = {}) {
  let token = options.auth === false ? null : await accessToken();
  let res = await send(method, path, { ...options, token });
  if (res.status === 401 && token) {
    token = await refresh(token);
    if (token) res = await send(method, path, { ...options, token });
  }
  return parse(res);
}

/**
 * POST a FormData with upload progress (fetch cannot report it): onProgress(0..1).
 * An abort of `signal` cancels it (AbortError). Retries once after a 401, like call().
 */
export async function upload(path, form, { onProgress, signal } = {}) {
  let token = await accessToken();
  for (let attempt = 0; ; attempt++) {
    const res = await new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', path);
      xhr.setRequestHeader('Accept', 'application/json');
      if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
      xhr.upload.addEventListener('progress', (e) => e.lengthComputable && onProgress?.(e.loaded / e.total));
      xhr.addEventListener('load', () =>
        resolve(new Response(xhr.status === 204 ? null : xhr.responseText, {
          status: xhr.status,
          statusText: xhr.statusText,
          headers: { 'Content-Type': xhr.getResponseHeader('Content-Type') || '', 'X-Request-ID': xhr.getResponseHeader('X-Request-ID') || '' },
        })));
      xhr.addEventListener('error', () => reject(offline()));
      xhr.addEventListener('abort', () => reject(new DOMException('The upload was cancelled.', 'AbortError')));
      signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(form);
    });
    if (res.status === 401 && token && attempt === 0) {
      token = await refresh(token);
      if (token) continue;
    }
    return parse(res);
  }
}

// --- Account ------------------------------------------------------------------------

export async function signIn(email, password) {
  keepSession(await call('POST', '/auth/login', { json: { email, password }, auth: false }));
}

export async function signUp(name, email, password) {
  keepSession(await call('POST', '/auth/signup', { json: { name, email, password }, auth: false }));
}

/** Ends this browser's session on the server (POST /auth/logout), and here in any case. */
export async function signOut() {
  const s = load();
  try {
    if (s) await call('POST', '/auth/logout', { json: { refreshToken: s.refreshToken }, auth: false });
  } finally {
    forgetSession('signout');
  }
}

/** Deletes the account, proven by {currentPassword} or, without a password, {provider, idToken}. */
export async function deleteAccount(proof) {
  await call('DELETE', '/auth/me', { json: proof });
  forgetSession('deleted');
}

// --- Social sign-in -------------------------------------------------------------------

let providerList = null;
/** The providers a browser can sign in with: [{name, clientId, authorizationEndpoint}], asked once. */
export function socialProviders() {
  providerList ??= call('GET', '/auth/social/providers', { auth: false }).then((data) => data.items, (error) => {
    providerList = null;
    throw error;
  });
  return providerList;
}

/** Signs in with a provider's ID token; true when that made a new account (201). */
export async function socialSignIn(provider, idToken, nonce) {
  const res = await send('POST', `/auth/social/${encodeURIComponent(provider)}`, { json: { idToken, nonce } });
  keepSession(await parse(res));
  return res.status === 201;
}
