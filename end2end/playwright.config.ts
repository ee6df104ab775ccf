import { defineConfig } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// Against a server you already run (e.g. `cargo leptos watch`): BASE_URL=http://127.0.0.1:3000.
// Otherwise Playwright starts the built server itself, on a free port and a fresh database.
// Workers re-evaluate this file but inherit the environment, so the values are set once.
if (!process.env.BASE_URL) {
  process.env.E2E_PORT ??= execFileSync(process.execPath, [
    "-e",
    "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
  ])
    .toString()
    .trim();
  process.env.E2E_DB ??= join(mkdtempSync(join(tmpdir(), "solotab-e2e-")), "solotab.db");
}
const ownServer = !process.env.BASE_URL;
const baseURL = process.env.BASE_URL ?? `http://127.0.0.1:${process.env.E2E_PORT}`;
const root = resolve(__dirname, "..");

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 2,
  // The html report never opens a browser: on failure it would wait forever.
  reporter: [["list"], ["html", { open: "never" }]],
  use: {
    baseURL,
    trace: "retain-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        browserName: "chromium",
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
          // Without the background-networking flags Chromium keeps dialling out, and this
          // network refuses every such connection.
          args: [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
          ],
        },
      },
    },
  ],
  webServer: ownServer
    ? {
        // The debug build, or the release one (`cargo leptos build --release`) with E2E_PROFILE=release.
        command: join(root, "target", process.env.E2E_PROFILE ?? "debug", "server"),
        cwd: root,
        url: `${baseURL}/healthz`,
        reuseExistingServer: false,
        timeout: 60_000,
        stdout: process.env.E2E_SERVER_LOGS ? "pipe" : "ignore",
        env: {
          LEPTOS_SITE_ADDR: `127.0.0.1:${process.env.E2E_PORT}`,
          LEPTOS_SITE_ROOT: join(root, "target", "site"),
          LEPTOS_OUTPUT_NAME: "solotab",
          SOLOTAB_DB: process.env.E2E_DB!,
          // Every test registers its own accounts from 127.0.0.1; the limit is tested in Rust.
          SOLOTAB_MAX_REGISTRATIONS_PER_HOUR: "0",
          SOLOTAB_LOG: "info",
        },
      }
    : undefined,
});
