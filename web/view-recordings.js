// Recordings: record from the microphone (MediaRecorder) or pick a file, upload it with a
// progress bar, play it with seeking, rename it, delete it to the trash, restore it.
import * as api from './api.js';
import { h, page, field, bindForm, pager, qs, notify, notifyError, formError, formatBytes, formatClock, timeEl } from './ui.js';

const MAX_BYTES = 100 * 1024 * 1024; // the service's default limit; it answers 413 above its own
// Types by extension, for files the browser does not label audio/* (a .webm is "video/webm").
const AUDIO_TYPES = { webm: 'audio/webm', weba: 'audio/webm', ogg: 'audio/ogg', oga: 'audio/ogg', opus: 'audio/ogg', mp3: 'audio/mpeg', m4a: 'audio/mp4', aac: 'audio/aac', wav: 'audio/wav', flac: 'audio/flac' };
const recordingPath = (id) => `/recordings/${encodeURIComponent(id)}`;

export async function recordings({ signal }) {
  const list = h('ul', { class: 'recordings' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No recordings yet. Record one above, or choose a file.');
  const more = pager(async (cursor) => {
    const result = await api.call('GET', `/recordings${qs({ limit: 20, cursor })}`, { signal });
    list.append(...result.items.map((rec) => recordingItem(rec, signal)));
    empty.hidden = list.childElementCount > 0;
    return result.nextCursor;
  });
  await more.start();
  const recorder = recorderPanel(signal, (rec) => {
    list.prepend(recordingItem(rec, signal));
    empty.hidden = true;
  });
  return page('Recordings',
    h('div', { class: 'toolbar' }, h('a', { class: 'button ghost', href: '#/recordings/trash' }, 'Trash')),
    recorder,
    h('section', { class: 'card' }, h('h2', {}, 'Your recordings'), list, empty, more.el));
}

// --- Recording and uploading --------------------------------------------------------------

function recorderPanel(signal, onUploaded) {
  const status = h('p', { class: 'rec-status', 'aria-live': 'polite' });
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const recordButton = h('button', { type: 'button', class: 'primary record' }, 'Record');
  const stopButton = h('button', { type: 'button', class: 'danger stop', hidden: true }, 'Stop');
  const picker = field('Or choose an audio file', { type: 'file', accept: 'audio/*' });
  const draft = h('div', { class: 'draft', hidden: true });
  let recorder = null;
  let stream = null;
  let clock = null;
  let draftUrl = null;
  let uploading = null; // the AbortController of the upload in progress

  const showProblem = (message) => {
    problem.textContent = message;
    problem.hidden = false;
  };
  function stopStream() {
    stream?.getTracks().forEach((track) => track.stop());
    clearInterval(clock);
  }
  function discard() {
    if (draftUrl) URL.revokeObjectURL(draftUrl);
    draftUrl = null;
    draft.hidden = true;
    draft.replaceChildren();
  }
  signal.addEventListener('abort', () => {
    if (recorder?.state === 'recording') recorder.stop();
    stopStream();
    uploading?.abort();
    discard();
  });

  recordButton.addEventListener('click', async () => {
    problem.hidden = true;
    if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) {
      showProblem('This browser cannot record on this page (recording needs https or localhost). Choose a file instead.');
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      showProblem(error.name === 'NotAllowedError'
        ? 'The microphone is blocked. Allow it in the browser\'s settings for this site, or choose a file.'
        : `The microphone is not available (${error.message}).`);
      return;
    }
    if (signal.aborted) return stopStream();
    discard();
    const mimeType = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4'].find((t) => MediaRecorder.isTypeSupported(t));
    recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    const chunks = [];
    const started = Date.now();
    recorder.addEventListener('dataavailable', (e) => e.data.size && chunks.push(e.data));
    recorder.addEventListener('stop', () => {
      stopStream();
      recordButton.hidden = false;
      stopButton.hidden = true;
      status.textContent = `Recorded ${formatClock((Date.now() - started) / 1000)}.`;
      if (signal.aborted) return;
      const type = (recorder.mimeType || 'audio/webm').split(';')[0];
      const stamp = new Date().toISOString().slice(0, 16).replace('T', ' ');
      const name = `recording-${stamp.replace(/[: ]/g, '-')}.${{ 'audio/ogg': 'ogg', 'audio/mp4': 'm4a' }[type] || 'webm'}`;
      showDraft(new File(chunks, name, { type }), `Recording ${stamp}`);
    });
    recorder.start(1000);
    clock = setInterval(() => { status.textContent = `Recording… ${formatClock((Date.now() - started) / 1000)}`; }, 250);
    status.textContent = 'Recording… 0:00';
    recordButton.hidden = true;
    stopButton.hidden = false;
    stopButton.focus();
  });
  stopButton.addEventListener('click', () => recorder?.stop());

  picker.querySelector('input').addEventListener('change', (event) => {
    const file = event.target.files[0];
    event.target.value = '';
    problem.hidden = true;
    if (!file) return;
    const extension = file.name.split('.').pop().toLowerCase();
    const type = file.type.startsWith('audio/') ? file.type : AUDIO_TYPES[extension];
    if (!type) return showProblem(`${file.name} is not an audio file.`);
    if (file.size > MAX_BYTES) return showProblem(`${file.name} is ${formatBytes(file.size)}; a recording may be at most 100 MB.`);
    if (file.size === 0) return showProblem(`${file.name} is empty.`);
    showDraft(type === file.type ? file : new File([file], file.name, { type }), file.name.replace(/\.[^.]+$/, ''));
  });

  // The take (or the file) before it is sent: listen, name it, upload or discard it.
  function showDraft(file, title) {
    discard();
    draftUrl = URL.createObjectURL(file);
    const progress = h('progress', { max: 1, value: 0, 'aria-label': 'Upload progress' });
    const percent = h('span', { class: 'percent' }, '');
    const cancel = h('button', { type: 'button', class: 'ghost', onClick: () => uploading?.abort() }, 'Cancel upload');
    const progressRow = h('div', { class: 'upload-progress', hidden: true }, progress, percent, cancel);
    const form = bindForm(
      h('form', { class: 'form' },
        h('audio', { controls: true, src: draftUrl, class: 'audio', 'aria-label': 'Listen before uploading' }),
        field('Title', { name: 'title', value: title, maxlength: '200', required: true }),
        progressRow,
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'ghost', onClick: discard }, 'Discard'),
          h('button', { type: 'submit', class: 'primary' }, 'Upload'))),
      async ({ title: chosen }, formEl) => {
        const body = new FormData();
        body.append('title', chosen);
        body.append('file', file, file.name);
        uploading = new AbortController();
        progressRow.hidden = false;
        const onProgress = (fraction) => {
          progress.value = fraction;
          percent.textContent = `${Math.round(fraction * 100)} %`;
        };
        try {
          const rec = await api.upload('/recordings', body, { onProgress, signal: uploading.signal });
          onUploaded(rec);
          discard();
          status.textContent = '';
          notify(`Uploaded "${rec.title}".`);
        } catch (error) {
          if (error.name !== 'AbortError') throw error;
          formError(formEl, 'The upload was cancelled.');
        } finally {
          uploading = null;
          progressRow.hidden = true;
        }
      });
    draft.replaceChildren(h('h3', {}, 'Ready to upload'), form);
    draft.hidden = false;
    form.querySelector('input[name=title]').focus();
  }

  return h('section', { class: 'card recorder' },
    h('h2', {}, 'New recording'),
    h('div', { class: 'actions start' }, recordButton, stopButton, status),
    picker, problem, draft);
}

// --- One recording ---------------------------------------------------------------------

function recordingItem(rec, signal) {
  const title = h('h3', { class: 'rec-title' }, rec.title);
  const playerBox = h('div', { class: 'player' });
  let player = null;

  const play = h('button', { type: 'button', class: 'secondary play' }, 'Play');
  play.addEventListener('click', async () => {
    if (player) {
      player.close();
      player = null;
      play.textContent = 'Play';
      return;
    }
    play.disabled = true;
    try {
      player = await openPlayer(rec, playerBox, signal);
      play.textContent = 'Close player';
    } catch (error) {
      if (error.name !== 'AbortError') notifyError(error);
    } finally {
      play.disabled = false;
    }
  });

  const renameForm = bindForm(
    h('form', { class: 'form inline-form', hidden: true },
      field('New title', { name: 'title', value: rec.title, maxlength: '200', required: true }),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'ghost', onClick: () => { renameForm.hidden = true; rename.focus(); } }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary' }, 'Save'))),
    async ({ title: next }) => {
      rec = await api.call('PATCH', recordingPath(rec.id), { json: { title: next } });
      title.textContent = rec.title;
      renameForm.hidden = true;
      notify(`Renamed to "${rec.title}".`);
      rename.focus();
    });
  const rename = h('button', { type: 'button', class: 'ghost', onClick: () => {
    renameForm.hidden = !renameForm.hidden;
    if (!renameForm.hidden) renameForm.querySelector('input').select();
  } }, 'Rename');

  const remove = h('button', { type: 'button', class: 'ghost danger-text', onClick: async () => {
    remove.disabled = true;
    try {
      await api.call('DELETE', recordingPath(rec.id));
      player?.close();
      item.remove();
      notify(`"${rec.title}" is in the trash; you can restore it from there.`);
    } catch (error) {
      notifyError(error);
      remove.disabled = false;
    }
  } }, 'Delete');

  const item = h('li', { class: 'recording', 'data-recording': rec.id },
    h('div', { class: 'rec-head' },
      h('div', { class: 'rec-text' }, title,
        h('p', { class: 'meta' }, timeEl(rec.createdAt), ` · ${formatBytes(rec.sizeBytes)} · ${rec.fileName}`)),
      h('div', { class: 'actions' }, play, rename, remove)),
    renameForm, playerBox);
  return item;
}

/** Resolves on `event`, rejects on the element's error. */
function once(el, event) {
  return new Promise((resolve, reject) => {
    const done = (ok) => () => {
      el.removeEventListener(event, onEvent);
      el.removeEventListener('error', onError);
      ok ? resolve() : reject(new Error('The recording cannot be played in this browser.'));
    };
    const onEvent = done(true);
    const onError = done(false);
    el.addEventListener(event, onEvent);
    el.addEventListener('error', onError);
  });
}

/**
 * An <audio> for a recording. The element cannot send the Authorization header, so it plays a
 * short-lived signed link (POST /recordings/{id}/link) that serves the bytes with Range. The
 * element keeps asking for ranges as it plays and seeks, so a link about to run out is
 * swapped for a fresh one at the same position before it plays or seeks, and once after an
 * error (an expired link answers 403).
 */
async function openPlayer(rec, box, signal) {
  const audio = h('audio', { controls: true, preload: 'metadata', class: 'audio', 'aria-label': `Player: ${rec.title}`, 'data-state': 'loading' });
  let expiresAt = 0;
  let reloading = null;
  let lastRetry = 0;

  async function freshLink() {
    const link = await api.call('POST', `${recordingPath(rec.id)}/link`, { signal });
    expiresAt = Date.parse(link.expiresAt);
    return link.url;
  }
  // data-state says whether a link is being fetched ("loading") or the player is "ready".
  function reload() {
    audio.dataset.state = 'loading';
    reloading ??= (async () => {
      const at = audio.currentTime;
      const playing = !audio.paused;
      audio.src = await freshLink();
      await once(audio, 'loadedmetadata');
      await findDuration(audio);
      audio.currentTime = at;
      if (playing) await audio.play();
    })().catch((error) => error.name !== 'AbortError' && notifyError(error)).finally(() => {
      reloading = null;
      audio.dataset.state = 'ready';
    });
  }
  const stale = () => expiresAt - Date.now() < 30_000;

  audio.src = await freshLink();
  box.replaceChildren(audio);
  await once(audio, 'loadedmetadata');
  await findDuration(audio);
  audio.addEventListener('play', () => stale() && reload());
  audio.addEventListener('seeking', () => stale() && reload());
  audio.addEventListener('error', () => {
    if (Date.now() - lastRetry < 10_000) return notify('This recording cannot be played right now.', 'error');
    lastRetry = Date.now();
    reload();
  });
  audio.dataset.state = 'ready';
  audio.play().catch(() => {}); // the click that opened the player lets it start
  return {
    close() {
      audio.pause();
      audio.removeAttribute('src');
      audio.load();
      box.replaceChildren();
    },
  };
}

/**
 * Files straight from MediaRecorder (WebM) carry no duration: the element says Infinity and
 * its seek bar does not work. Seeking far past the end makes it read the end of the file
 * (a Range request) and learn the duration; then it goes back to the start.
 */
async function findDuration(audio) {
  if (Number.isFinite(audio.duration)) return;
  const known = new Promise((resolve) => {
    const check = () => {
      if (!Number.isFinite(audio.duration)) return;
      audio.removeEventListener('durationchange', check);
      resolve();
    };
    audio.addEventListener('durationchange', check);
  });
  audio.currentTime = 1e101;
  await Promise.race([known, new Promise((resolve) => setTimeout(resolve, 5000))]);
  audio.currentTime = 0;
}

// --- The trash ---------------------------------------------------------------------------

export async function trash({ signal }) {
  const list = h('ul', { class: 'recordings' });
  const empty = h('p', { class: 'empty', hidden: true }, 'The trash is empty.');
  const more = pager(async (cursor) => {
    const result = await api.call('GET', `/recordings${qs({ deleted: 'true', limit: 20, cursor })}`, { signal });
    list.append(...result.items.map(trashItem));
    empty.hidden = list.childElementCount > 0;
    return result.nextCursor;
  });
  await more.start();

  function trashItem(rec) {
    const restore = h('button', { type: 'button', class: 'secondary', onClick: async () => {
      restore.disabled = true;
      try {
        const back = await api.call('POST', `${recordingPath(rec.id)}/restore`);
        item.remove();
        empty.hidden = list.childElementCount > 0;
        notify(`"${back.title}" is back in your recordings.`);
      } catch (error) {
        notifyError(error);
        restore.disabled = false;
      }
    } }, 'Restore');
    const item = h('li', { class: 'recording', 'data-recording': rec.id },
      h('div', { class: 'rec-head' },
        h('div', { class: 'rec-text' }, h('h3', { class: 'rec-title' }, rec.title),
          h('p', { class: 'meta' }, `${formatBytes(rec.sizeBytes)} · recorded `, timeEl(rec.createdAt))),
        h('div', { class: 'actions' }, restore)));
    return item;
  }

  return page('Trash',
    h('p', { class: 'lead' }, 'Deleted recordings wait here for a while before they are removed for good.'),
    h('section', { class: 'card' }, list, empty, more.el),
    h('p', {}, h('a', { href: '#/recordings' }, 'Back to your recordings')));
}
