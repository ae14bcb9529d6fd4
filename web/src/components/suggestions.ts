import { useEffect, useState } from 'preact/hooks';
import { gql } from '../api/graphql';
import { SearchSuggestionsQuery } from '../api/operations';

export interface Suggestion {
  text: string;
  kind: 'TITLE' | 'TAG' | 'CHANNEL';
  channelId?: string | null;
}

/** How long typing must pause before completions are asked for. */
const PAUSE_MS = 120;

/**
 * Completions of what is being typed (searchSuggestions), asked for once typing pauses;
 * an answer to an older prefix is never shown over a newer one (its request is aborted).
 */
export function useSuggestions(prefix: string): Suggestion[] {
  const [found, setFound] = useState<Suggestion[]>([]);
  useEffect(() => {
    if (!/[\p{L}\p{N}]/u.test(prefix) || prefix.length > 100) {
      setFound([]);
      return;
    }
    const abort = new AbortController();
    const timer = setTimeout(() => {
      gql(SearchSuggestionsQuery, { prefix, first: 8 }, abort.signal)
        .then((data) => setFound(data.searchSuggestions as Suggestion[]))
        .catch(() => {
          // Completions are a convenience: a failure leaves the box as it was.
        });
    }, PAUSE_MS);
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }, [prefix]);
  return found;
}
