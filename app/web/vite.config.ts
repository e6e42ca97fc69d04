// Vite build of the gpuops web frontend. `npm run build` writes dist/ (served
// by nginx from images/web); `npm run dev` also serves /config.js, which nginx
// serves from a file the deploy writes, with apiBase from GPUOPS_API_BASE.
import react from "@vitejs/plugin-react";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

function devConfigJs(): Plugin {
  const apiBase = process.env.GPUOPS_API_BASE ?? "http://127.0.0.1:8081";
  return {
    name: "gpuops-dev-config-js",
    apply: "serve",
    configureServer(server) {
      server.middlewares.use("/config.js", (_req, res) => {
        res.setHeader("Content-Type", "application/javascript");
        res.setHeader("Cache-Control", "no-store");
        res.end(`window.GPUOPS_CONFIG = ${JSON.stringify({ apiBase })};\n`);
      });
    },
  };
}

export default defineConfig({
  plugins: [react(), devConfigJs()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // uPlot is the only sizeable dependency; one vendor chunk keeps caching simple.
    rollupOptions: {
      output: {
        manualChunks: { vendor: ["react", "react-dom", "react-router-dom", "uplot"] },
      },
    },
  },
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
