/** 75 → "1:15", 3725 → "1:02:05"; unknown → "". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '';
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** 1 → "1", 1234 → "1.2K", 2500000 → "2.5M". */
export function compactNumber(n: number): string {
  if (n < 1000) return String(n);
  const units: [number, string][] = [[1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [size, unit] of units) {
    if (n >= size) {
      const v = n / size;
      const text = v >= 100 ? Math.floor(v).toString() : (Math.floor(v * 10) / 10).toString();
      return `${text}${unit}`;
    }
  }
  return String(n);
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${compactNumber(n)} ${n === 1 ? one : many}`;
}

/** "just now", "5 minutes ago", "3 days ago", then the date (YYYY-MM-DD). */
export function timeAgo(iso: string, now = Date.now()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 45) return 'just now';
  const say = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'} ago`;
  if (s < 3600) return say(Math.max(1, Math.floor(s / 60)), 'minute');
  if (s < 86400) return say(Math.floor(s / 3600), 'hour');
  if (s < 7 * 86400) return say(Math.floor(s / 86400), 'day');
  if (s < 28 * 86400) return say(Math.floor(s / (7 * 86400)), 'week');
  return new Date(then).toISOString().slice(0, 10);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 10 ? 0 : 1)} ${units[i]}`;
}
