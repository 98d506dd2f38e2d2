// A tiny hash router. Pages live after the "#" (/#/polls/42, /#/reset?token=...): the
// gateway serves index.html for "/" alone, nothing on the server has to know the pages,
// and the links in the e-mails point at them.

const routes = [];

/** route('/polls/:id', view, {auth: true}): `auth` pages send a signed-out person to sign in. */
export function route(pattern, view, options = {}) {
  const names = [];
  const source = pattern.replace(/:(\w+)/g, (_, name) => {
    names.push(name);
    return '([^/]+)';
  });
  routes.push({ regex: new RegExp(`^${source}$`), names, view, auth: Boolean(options.auth) });
}

/** The route of a hash ("#/polls/42?x=1"): {view, auth, path, params, query}, or null. */
export function resolve(hash) {
  const [path, search = ''] = hash.replace(/^#/, '').split('?', 2);
  for (const r of routes) {
    const match = r.regex.exec(path);
    if (!match) continue;
    const params = {};
    r.names.forEach((name, i) => {
      params[name] = decodeURIComponent(match[i + 1]);
    });
    return { view: r.view, auth: r.auth, path, params, query: new URLSearchParams(search) };
  }
  return null;
}

/** Go to a page ("/polls/42"); the hashchange event renders it. */
export function navigate(path) {
  if (location.hash === `#${path}`) dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = path;
}
