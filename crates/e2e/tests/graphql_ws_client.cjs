// Runs one GraphQL subscription with graphql-ws (the client browsers use) and prints each
// result as a JSON line on stdout. Installed by deploy/local/deps into $KINO_CACHE_DIR/node.
//
//   node graphql_ws_client.cjs URL QUERY VARIABLES_JSON [TOKEN] [MAX_RESULTS]
//
// Exits 0 when the server completes the subscription (or MAX_RESULTS arrived), non-zero
// with the reason on stderr when the connection or the operation fails.
const { createClient } = require('graphql-ws');
const WebSocket = require('ws');

const [url, query, variablesJson, token, max] = process.argv.slice(2);
const limit = max ? Number(max) : Infinity;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  // Browsers cannot set headers on a WebSocket: the token goes in connection_init.
  connectionParams: token ? { authorization: `Bearer ${token}` } : {},
  retryAttempts: 0,
  lazy: false,
  on: {
    connected: () => console.error('connected'),
    closed: (event) => console.error(`closed ${event.code} ${event.reason}`),
  },
});

(async () => {
  let n = 0;
  try {
    const results = client.iterate({ query, variables: JSON.parse(variablesJson) });
    for await (const result of results) {
      console.log(JSON.stringify(result));
      if (++n >= limit) break;
    }
  } catch (error) {
    const detail = error && error.code ? `close ${error.code} ${error.reason}` : JSON.stringify(error);
    console.error(`failed: ${detail}`);
    process.exitCode = 1;
  } finally {
    await client.dispose();
  }
})();
