import { useEffect, useRef, useState } from 'preact/hooks';
import type { PreviousUpload, Upload as TusUpload } from 'tus-js-client';
import { gql, live } from '../api/graphql';
import { UploadProgressSubscription, VideoStatusQuery } from '../api/operations';
import { accessToken, refreshNow, session } from '../api/session';
import { ErrorBox } from '../components/common';
import { formatBytes } from '../lib/format';
import { isEmailUnverified } from '../lib/recovery';
import { etaText, normaliseTags, shouldRetryStatus, titleFromFilename, tusError, videoIdFromUploadUrl } from '../lib/upload';
import { Link } from '../router';

type Phase = 'pick' | 'uploading' | 'paused' | 'processing' | 'ready' | 'failed';

interface Transcode {
  stage: string;
  percent: number;
  eta?: number | null;
  reason?: string | null;
}

function ProgressBar({ label, value, id }: { label: string; value: number; id: string }) {
  const v = Math.max(0, Math.min(100, Math.floor(value)));
  return (
    <div class="progress-wrap">
      <span id={`${id}-label`}>{label}</span>
      <div class="progress" id={id} role="progressbar" aria-labelledby={`${id}-label`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={v} aria-valuetext={`${v}%`}>
        <div class="bar" style={{ width: `${v}%` }} />
      </div>
      <span class="pct">{v}%</span>
    </div>
  );
}

export default function UploadPage() {
  const [file, setFile] = useState<File | null>(null);
  const [form, setForm] = useState({ title: '', description: '', tags: '', category: '', visibility: 'public' });
  const [phase, setPhase] = useState<Phase>('pick');
  const [sent, setSent] = useState(0);
  const [previous, setPrevious] = useState<PreviousUpload | null>(null);
  const [resumedAt, setResumedAt] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [videoId, setVideoId] = useState<string | null>(null);
  const [transcode, setTranscode] = useState<Transcode | null>(null);
  const [dragging, setDragging] = useState(false);
  const upload = useRef<TusUpload | null>(null);
  const stopLive = useRef<(() => void) | null>(null);
  const poll = useRef<ReturnType<typeof setInterval> | null>(null);

  useEffect(
    () => () => {
      upload.current?.abort(false);
      stopLive.current?.();
      if (poll.current) clearInterval(poll.current);
    },
    [],
  );

  const fingerprint = async (f: File) => ['kino', session()?.userId ?? 'anon', f.name, f.type, f.size, f.lastModified].join(':');

  const choose = async (f: File | null) => {
    setError(null);
    setPrevious(null);
    setFile(f);
    if (!f) return;
    if (!form.title) setForm((old) => ({ ...old, title: titleFromFilename(f.name) }));
    // An upload of this very file that a reload or a crash cut short resumes where it stopped.
    const tus = await import('tus-js-client');
    const probe = new tus.Upload(f, { endpoint: new URL('/video/upload', location.href).href, fingerprint });
    const found = (await probe.findPreviousUploads()).sort((a, b) => Date.parse(b.creationTime) - Date.parse(a.creationTime));
    setPrevious(found[0] ?? null);
  };

  const watchTranscode = (id: string) => {
    if (stopLive.current) return;
    const apply = (t: Transcode) => {
      setTranscode((old) => (old && old.percent > t.percent && t.stage !== 'ready' && t.stage !== 'failed' ? old : t));
      if (t.stage === 'ready') setPhase('ready');
      if (t.stage === 'failed') {
        setPhase('failed');
        setError(new Error(t.reason ? `Transcoding failed: ${t.reason}` : 'Transcoding failed'));
      }
    };
    stopLive.current = live(UploadProgressSubscription, () => ({ videoId: id }), {
      next: (d) => {
        const p = d.uploadProgress;
        apply({ stage: p.stage, percent: p.stage === 'ready' ? 100 : p.percent, eta: p.etaSeconds, reason: p.failureReason });
      },
      error: (e) => setError(e),
      complete: () => undefined,
    });
  };

  const checkStatus = async (id: string) => {
    try {
      const d = await gql(VideoStatusQuery, { id });
      const v = d.video;
      if (v?.status === 'READY') {
        setTranscode({ stage: 'ready', percent: 100 });
        setPhase('ready');
      } else if (v?.status === 'FAILED') {
        setPhase('failed');
        setError(new Error(v.failureReason ? `Transcoding failed: ${v.failureReason}` : 'Transcoding failed'));
      }
    } catch {
      /* the live feed still runs; try again at the next tick */
    }
  };

  const start = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setError(null);
    const tus = await import('tus-js-client');
    const u = new tus.Upload(file, {
      endpoint: new URL('/video/upload', location.href).href,
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      removeFingerprintOnSuccess: true,
      fingerprint,
      metadata: {
        filename: file.name,
        filetype: file.type,
        title: form.title.trim() || titleFromFilename(file.name),
        description: form.description,
        tags: normaliseTags(form.tags),
        category: form.category.trim(),
        visibility: form.visibility,
      },
      onBeforeRequest: async (req) => {
        const token = await accessToken();
        if (token) req.setHeader('Authorization', `Bearer ${token}`);
      },
      onShouldRetry: (err, attempt) => {
        const status = (err as { originalResponse?: { getStatus(): number } | null }).originalResponse?.getStatus();
        if (status === 401 && attempt < 2) {
          void refreshNow();
          return true;
        }
        return shouldRetryStatus(status);
      },
      onUploadUrlAvailable: () => {
        const id = videoIdFromUploadUrl(u.url);
        if (id) {
          setVideoId(id);
          watchTranscode(id);
        }
      },
      onAfterResponse: (req, res) => {
        // A HEAD is how a resumed upload learns how much the server already has.
        if (req.getMethod() === 'HEAD' && res.getStatus() === 200) {
          const offset = Number(res.getHeader('Upload-Offset'));
          if (Number.isFinite(offset)) {
            setResumedAt(offset);
            setSent(offset);
          }
        }
      },
      onProgress: (bytes) => setSent(bytes),
      onSuccess: () => {
        setSent(file.size);
        setPhase((p) => (p === 'ready' || p === 'failed' ? p : 'processing'));
        setTranscode((t) => t ?? { stage: 'queued', percent: 0 });
        const id = videoIdFromUploadUrl(u.url);
        if (id) {
          setVideoId(id);
          watchTranscode(id);
          void checkStatus(id);
          poll.current = setInterval(() => void checkStatus(id), 5000);
        }
      },
      onError: (err) => {
        const e = tusError(err as Parameters<typeof tusError>[0]);
        if (isEmailUnverified(e)) {
          // Refused before anything was created: back to the form, to try again once verified.
          upload.current = null;
          setSent(0);
          setPhase('pick');
        } else setPhase('paused');
        setError(e);
      },
    });
    upload.current = u;
    if (previous) u.resumeFromPreviousUpload(previous);
    setPhase('uploading');
    u.start();
  };

  useEffect(() => {
    if ((phase === 'ready' || phase === 'failed') && poll.current) {
      clearInterval(poll.current);
      poll.current = null;
    }
  }, [phase]);

  const pause = () => {
    upload.current?.abort(false);
    setPhase('paused');
  };
  const resume = () => {
    setError(null);
    setPhase('uploading');
    upload.current?.start();
  };
  const cancel = async () => {
    if (!upload.current) return;
    if (!confirm('Cancel this upload and delete what was sent?')) return;
    try {
      await upload.current.abort(true);
    } catch (err) {
      setError(err);
    }
    stopLive.current?.();
    stopLive.current = null;
    upload.current = null;
    setPhase('pick');
    setSent(0);
    setVideoId(null);
  };

  const pct = file && file.size > 0 ? (sent / file.size) * 100 : 0;
  const busy = phase !== 'pick';
  const set = (k: keyof typeof form) => (e: { currentTarget: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement }) => setForm({ ...form, [k]: e.currentTarget.value });

  return (
    <section class="narrow">
      <h1>Upload a video</h1>
      <form onSubmit={start}>
        <div
          class={`dropzone${dragging ? ' over' : ''}`}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            e.preventDefault();
            setDragging(false);
            const f = e.dataTransfer?.files?.[0];
            if (f && !busy) void choose(f);
          }}
        >
          <label for="upload-file">Video file (or drop it here)</label>
          <input id="upload-file" type="file" accept="video/*,.mkv,.mov,.mp4,.webm" disabled={busy} onChange={(e) => void choose(e.currentTarget.files?.[0] ?? null)} />
          {file && (
            <p class="muted">
              {file.name} · {formatBytes(file.size)}
            </p>
          )}
          {previous && phase === 'pick' && (
            <p class="notice" role="status" id="upload-resume-notice">
              An interrupted upload of this file was found; it will resume where it stopped.
            </p>
          )}
        </div>
        <div class="field">
          <label for="upload-title">Title</label>
          <input id="upload-title" required maxLength={200} value={form.title} disabled={busy} onInput={set('title')} />
        </div>
        <div class="field">
          <label for="upload-description">Description</label>
          <textarea id="upload-description" rows={3} maxLength={5000} value={form.description} disabled={busy} onInput={set('description')} />
        </div>
        <div class="field">
          <label for="upload-tags">Tags (comma-separated)</label>
          <input id="upload-tags" value={form.tags} disabled={busy} onInput={set('tags')} />
        </div>
        <div class="field">
          <label for="upload-category">Category</label>
          <input id="upload-category" maxLength={50} value={form.category} disabled={busy} onInput={set('category')} />
        </div>
        <div class="field">
          <label for="upload-visibility">Visibility</label>
          <select id="upload-visibility" value={form.visibility} disabled={busy} onChange={set('visibility')}>
            <option value="public">Public (listed)</option>
            <option value="unlisted">Unlisted (anyone with the link)</option>
            <option value="private">Private (only me)</option>
          </select>
        </div>
        {phase === 'pick' && (
          <button type="submit" disabled={!file}>
            {previous ? 'Resume upload' : 'Upload'}
          </button>
        )}
      </form>

      {busy && (
        <div class="stages" aria-live="polite">
          <h2>Upload</h2>
          <ProgressBar id="upload-progress" label="Sent" value={pct} />
          {resumedAt !== null && resumedAt > 0 && file && (
            <p class="muted" id="upload-resumed">
              Resumed at {Math.floor((resumedAt / file.size) * 100)}% ({formatBytes(resumedAt)}).
            </p>
          )}
          {(phase === 'uploading' || phase === 'paused') && (
            <div class="row">
              {phase === 'uploading' ? (
                <button type="button" onClick={pause}>
                  Pause
                </button>
              ) : (
                <button type="button" onClick={resume}>
                  Resume
                </button>
              )}
              <button type="button" class="secondary" onClick={cancel}>
                Cancel
              </button>
            </div>
          )}
          {(phase === 'processing' || phase === 'ready' || (phase === 'failed' && transcode)) && (
            <>
              <h2>Transcoding</h2>
              <ProgressBar id="transcode-progress" label={`Stage: ${transcode?.stage ?? 'queued'}`} value={transcode?.percent ?? 0} />
              {phase === 'processing' && transcode?.eta ? <p class="muted">{etaText(transcode.eta)}</p> : null}
            </>
          )}
          {phase === 'ready' && videoId && (
            <p class="success" role="status" id="upload-ready">
              Your video is ready. <Link href={`/watch/${videoId}`}>Watch it</Link>
            </p>
          )}
        </div>
      )}
      {isEmailUnverified(error) ? (
        <div class="error" role="alert" id="upload-unverified">
          Verify your email address before uploading: follow the link we mailed you, or send a new one from{' '}
          <Link href="/settings">Settings</Link>.
        </div>
      ) : (
        <ErrorBox error={error} />
      )}
    </section>
  );
}
