/** Anonymous viewers are counted per tab: a random id kept in sessionStorage. */
export function tabSessionId(): string {
  const key = 'kino.sessionId';
  try {
    let id = sessionStorage.getItem(key);
    if (!id) {
      id = crypto.randomUUID();
      sessionStorage.setItem(key, id);
    }
    return id;
  } catch {
    return 'no-storage';
  }
}
