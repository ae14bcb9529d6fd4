/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// `npm run dev` proxies the API to a running gateway (KINO_URL, default :8080), so the
// app keeps using relative URLs exactly as it does when the gateway serves it.
const gateway = process.env.KINO_URL ?? 'http://localhost:8080';

export default defineConfig({
  plugins: [preact()],
  build: { target: 'es2022', sourcemap: false, reportCompressedSize: false, chunkSizeWarningLimit: 700 },
  server: {
    proxy: {
      '/auth': gateway,
      '/user': gateway,
      '/video': gateway,
      '/media/graphql/ws': { target: gateway.replace(/^http/, 'ws'), ws: true },
      '/media': gateway,
    },
  },
  test: { environment: 'node', include: ['src/**/*.test.ts'] },
});
