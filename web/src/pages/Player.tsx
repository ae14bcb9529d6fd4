import { useEffect, useRef, useState } from 'preact/hooks';
import type HlsType from 'hls.js';
import { ErrorBox } from '../components/common';
import { formatDuration } from '../lib/format';
import { parseStoryboard, tileAt, type Tile } from '../lib/storyboard';

export interface PlayerProps {
  src: string;
  poster?: string | null;
  captions: { language: string; label: string; url: string }[];
  storyboard?: { vttUrl: string } | null;
  title: string;
  onPlaying?: () => void;
  onTime?: (t: number, playing: boolean) => void;
  onStop?: () => void;
}

interface Level {
  index: number;
  label: string;
}

declare global {
  interface Window {
    __kinoHls?: HlsType | null;
  }
}

/**
 * HLS playback: hls.js where Media Source Extensions exist (quality choice, captions from
 * the master's SUBTITLES group), the browser's own HLS otherwise (Safari on iOS).
 */
export function Player(props: PlayerProps) {
  const video = useRef<HTMLVideoElement>(null);
  const hls = useRef<HlsType | null>(null);
  const [levels, setLevels] = useState<Level[]>([]);
  const [level, setLevel] = useState(-1);
  const [subs, setSubs] = useState<{ index: number; label: string }[]>([]);
  const [sub, setSub] = useState(-1);
  const [native, setNative] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [duration, setDuration] = useState(0);
  const [time, setTime] = useState(0);
  const [tiles, setTiles] = useState<Tile[]>([]);
  const [preview, setPreview] = useState<{ t: number; left: number } | null>(null);

  useEffect(() => {
    const el = video.current!;
    let disposed = false;
    setError(null);
    setLevels([]);
    setSubs([]);
    (async () => {
      const Hls = (await import('hls.js')).default;
      if (disposed) return;
      if (Hls.isSupported()) {
        const h = new Hls({ enableWebVTT: true, renderTextTracksNatively: true, capLevelToPlayerSize: false });
        hls.current = h;
        window.__kinoHls = h;
        h.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
          setLevels(
            data.levels
              .map((l, index) => ({ index, label: l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kb/s`, h: l.height }))
              .sort((a, b) => b.h - a.h),
          );
        });
        h.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_e, data) => {
          setSubs(data.subtitleTracks.map((t, index) => ({ index, label: t.name || t.lang || `Track ${index + 1}` })));
        });
        h.on(Hls.Events.SUBTITLE_TRACK_SWITCH, (_e, data) => setSub(data.id));
        h.on(Hls.Events.ERROR, (_e, data) => {
          if (!data.fatal) return;
          if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
            h.recoverMediaError();
            return;
          }
          const status = data.response?.code;
          setError(
            status === 403 || status === 404
              ? 'This video cannot be played (it may have become private or been deleted). Reload the page to try again.'
              : `Playback failed (${data.details}). Check your connection and reload the page.`,
          );
        });
        h.loadSource(new URL(props.src, location.href).href);
        h.attachMedia(el);
      } else if (el.canPlayType('application/vnd.apple.mpegurl')) {
        setNative(true);
        el.src = props.src;
      } else {
        setError('This browser cannot play HLS video.');
      }
    })().catch(() => setError('The player could not be loaded. Reload the page.'));
    return () => {
      disposed = true;
      hls.current?.destroy();
      hls.current = null;
      window.__kinoHls = null;
    };
  }, [props.src]);

  useEffect(() => {
    setTiles([]);
    const sb = props.storyboard;
    if (!sb) return;
    const ctl = new AbortController();
    const base = new URL(sb.vttUrl, location.href).href;
    fetch(base, { signal: ctl.signal })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((text) => setTiles(parseStoryboard(text, base)))
      .catch(() => undefined); // seek previews are a nicety: the player works without
    return () => ctl.abort();
  }, [props.storyboard?.vttUrl]);

  const chooseLevel = (i: number) => {
    setLevel(i);
    if (hls.current) hls.current.currentLevel = i;
  };
  const chooseSub = (i: number) => {
    setSub(i);
    if (hls.current) {
      hls.current.subtitleTrack = i;
      hls.current.subtitleDisplay = i >= 0;
    }
  };

  const seekRef = useRef<HTMLInputElement>(null);
  const showPreview = (t: number) => {
    const el = seekRef.current;
    if (!el || !duration) return;
    const frac = Math.max(0, Math.min(1, t / duration));
    setPreview({ t, left: frac * el.clientWidth });
  };
  const tile = preview ? tileAt(tiles, preview.t) : null;

  return (
    <div class="player">
      <video
        ref={video}
        controls
        playsInline
        preload="metadata"
        poster={props.poster ?? undefined}
        aria-label={props.title}
        onLoadedMetadata={(e) => setDuration(e.currentTarget.duration || 0)}
        onDurationChange={(e) => setDuration(e.currentTarget.duration || 0)}
        onTimeUpdate={(e) => {
          setTime(e.currentTarget.currentTime);
          props.onTime?.(e.currentTarget.currentTime, !e.currentTarget.paused);
        }}
        onPlaying={() => props.onPlaying?.()}
        onPause={() => props.onStop?.()}
        onSeeking={() => props.onStop?.()}
        onEnded={() => props.onStop?.()}
      >
        {native && props.captions.map((c) => <track kind="subtitles" srcLang={c.language} label={c.label} src={c.url} />)}
      </video>
      <div class="seek">
        <label for="seek" class="visually-hidden">
          Seek
        </label>
        <input
          ref={seekRef}
          id="seek"
          type="range"
          min={0}
          max={duration || 0}
          step={0.1}
          value={time}
          aria-valuetext={`${formatDuration(time)} of ${formatDuration(duration)}`}
          onInput={(e) => {
            const t = Number(e.currentTarget.value);
            if (video.current) video.current.currentTime = t;
            showPreview(t);
          }}
          onPointerMove={(e) => {
            const r = e.currentTarget.getBoundingClientRect();
            showPreview(((e.clientX - r.left) / r.width) * duration);
          }}
          onPointerLeave={() => setPreview(null)}
          onBlur={() => setPreview(null)}
          onKeyUp={() => setPreview(null)}
        />
        {preview && (
          <div class="preview" id="storyboard-preview" style={{ left: `${preview.left}px` }} aria-hidden="true">
            {tile && (
              <div
                class="tile"
                style={{ width: `${tile.w}px`, height: `${tile.h}px`, backgroundImage: `url("${tile.url}")`, backgroundPosition: `-${tile.x}px -${tile.y}px` }}
              />
            )}
            <span>{formatDuration(preview.t)}</span>
          </div>
        )}
      </div>
      <div class="row player-controls">
        {levels.length > 0 && (
          <>
            <label for="quality">Quality</label>
            <select id="quality" value={level} onChange={(e) => chooseLevel(Number(e.currentTarget.value))}>
              <option value={-1}>Auto</option>
              {levels.map((l) => (
                <option value={l.index}>{l.label}</option>
              ))}
            </select>
          </>
        )}
        {subs.length > 0 && (
          <>
            <label for="captions">Captions</label>
            <select id="captions" value={sub} onChange={(e) => chooseSub(Number(e.currentTarget.value))}>
              <option value={-1}>Off</option>
              {subs.map((s) => (
                <option value={s.index}>{s.label}</option>
              ))}
            </select>
          </>
        )}
      </div>
      {error && <ErrorBox error={new Error(error)} />}
    </div>
  );
}
