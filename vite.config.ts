import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The web app. The engine runs in a module Worker (src/worker/engine.worker.ts) bundled as ESM.
export default defineConfig({
  plugins: [react()],
  worker: { format: 'es' },
  build: { target: 'es2022', outDir: 'dist', sourcemap: true },
  server: { port: 5173 },
});
