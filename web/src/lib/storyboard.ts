// Seek previews from a storyboard WebVTT (`Video.storyboard.vttUrl`): each cue names a
// sprite sheet and a rectangle, `storyboard-0.jpg#xywh=160,0,160,90`, relative to the VTT.

export interface Tile {
  start: number;
  end: number;
  url: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** `01:02:03.500` or `02:03.500` → seconds. */
export function parseTimestamp(text: string): number {
  const parts = text.trim().split(':');
  let s = 0;
  for (const p of parts) s = s * 60 + Number(p.replace(',', '.'));
  return s;
}

export function parseStoryboard(vtt: string, baseUrl: string): Tile[] {
  const tiles: Tile[] = [];
  const blocks = vtt.replace(/\r\n?/g, '\n').split(/\n\n+/);
  for (const block of blocks) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const timing = lines.findIndex((l) => l.includes('-->'));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [a, b] = lines[timing].split('-->');
    const ref = lines[timing + 1].trim();
    const hash = ref.indexOf('#xywh=');
    if (hash < 0) continue;
    const [x, y, w, h] = ref
      .slice(hash + 6)
      .split(',')
      .map(Number);
    if ([x, y, w, h].some((n) => !Number.isFinite(n))) continue;
    tiles.push({
      start: parseTimestamp(a),
      end: parseTimestamp(b.trim().split(/\s+/)[0]),
      url: new URL(ref.slice(0, hash), baseUrl).href,
      x,
      y,
      w,
      h,
    });
  }
  return tiles;
}

/** The tile shown at `time` (the last one past the end). */
export function tileAt(tiles: Tile[], time: number): Tile | null {
  if (!tiles.length) return null;
  let lo = 0;
  let hi = tiles.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (tiles[mid].start <= time) lo = mid;
    else hi = mid - 1;
  }
  return tiles[lo];
}
