import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { captureTokenFromUrl } from "./auth";
import { resolveConfig } from "./config";
import "./styles.css";

// Before anything renders: move #token=... into storage and out of the URL.
captureTokenFromUrl();

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App resolved={resolveConfig(window.GPUOPS_CONFIG)} />
    </StrictMode>,
  );
}
