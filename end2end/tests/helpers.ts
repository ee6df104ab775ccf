import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  test as base,
  expect,
  type APIRequestContext,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Page,
} from "@playwright/test";

export { expect };

export const PASSWORD = "correct horse battery";

/**
 * What the browser itself logs when a request fails or is refused (a 401, a cut network):
 * expected wherever a test does that. Any other console warning or error, and any uncaught
 * exception, fails the test.
 */
const NETWORK_LOG = [/^Failed to load resource: /, /^WebSocket connection to '[^']*' failed/];

const problems: string[] = [];
const allowed: RegExp[] = [];

/** Lets the running test's console say `pattern` (for a test that breaks the page on purpose). */
export function allowConsole(pattern: RegExp) {
  allowed.push(pattern);
}

/** Fails the running test on console warnings and errors of every page of `context`. */
function guard(context: BrowserContext) {
  context.on("console", (message) => {
    const type = message.type();
    if (type !== "warning" && type !== "error") return;
    report(`console ${type}: ${message.text()}`, message.text());
  });
  context.on("weberror", (error) => report(`uncaught: ${error.error().message}`, error.error().message));
}

function report(problem: string, text: string) {
  if ([...NETWORK_LOG, ...allowed].some((pattern) => pattern.test(text))) return;
  problems.push(problem);
}

export const test = base.extend<{ consoleGuard: void }>({
  context: async ({ context }, use) => {
    guard(context);
    await use(context);
  },
  consoleGuard: [
    async ({}, use) => {
      problems.length = 0;
      allowed.length = 0;
      await use();
      expect(problems, "the browser console stayed clean").toEqual([]);
    },
    { auto: true },
  ],
});

/** Another browser (or device): a context of its own, watched like the default one. */
export async function newContext(browser: Browser, options: BrowserContextOptions = {}) {
  const context = await browser.newContext(options);
  guard(context);
  return context;
}

/** A username no other test uses. */
export function uniqueName(prefix = "u"): string {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
}

/** Registers through the API (the UI's own registration has its own test). */
export async function registerViaApi(request: APIRequestContext, username: string) {
  const response = await request.post("/api/register", { data: { username, password: PASSWORD } });
  expect(response.status()).toBe(201);
}

/** Waits until the wasm has hydrated the page (the app sets data-hydrated on <body>). */
export async function hydrated(page: Page) {
  await page.locator("body[data-hydrated]").waitFor();
}

/** Opens the login page and waits until it has decided what to offer. */
export async function openLogin(page: Page) {
  await page.goto("/login");
  await hydrated(page);
  await page.locator("[data-device-check=done]").waitFor();
}

/**
 * Signs in with the password (choosing "Sign in as someone else" if this browser is offered
 * "Use here") and waits for the home page. Returns the UID the server issued.
 */
export async function signIn(page: Page, username: string): Promise<string> {
  await openLogin(page);
  const other = page.getByRole("button", { name: "Sign in as someone else" });
  if (await other.isVisible()) await other.click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  const loginResponse = page.waitForResponse((r) => r.url().endsWith("/api/login"));
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  const body = await (await loginResponse).json();
  await activeHome(page, username);
  return body.uid as string;
}

/** The home page of an active tab, premium content loaded. */
export async function activeHome(page: Page, username: string) {
  await expect(page.getByRole("heading", { name: `Welcome, ${username}` })).toBeVisible();
  await expect(premiumBody(page)).not.toHaveText("Loading…");
}

export function premiumBody(page: Page) {
  return page.locator(".premium-body");
}

export function supersededAlert(page: Page) {
  return page.getByRole("alert").filter({ hasText: "This tab is no longer active" });
}

export function connectionBanner(page: Page) {
  return page.getByText("You are still signed in in this tab; retrying");
}

/** Clicks Refresh and waits for the premium request it makes to complete. */
export async function refresh(page: Page) {
  const done = page.waitForResponse((r) => r.url().endsWith("/api/premium"));
  await page.getByRole("button", { name: "Refresh" }).click();
  return done;
}

/** Where screenshots go: the tracked docs/ ones only when asked to refresh them. */
export function screenshotPath(name: string): string {
  const dir = process.env.UPDATE_SCREENSHOTS ? "../docs/screenshots" : "test-results/screenshots";
  return `${__dirname}/../${dir}/${name}`;
}

/** The repository's root, where `target/` is. */
export const root = resolve(__dirname, "..", "..");

/** The server binary under test: the debug build, or the release one with E2E_PROFILE=release. */
export const serverBinary = join(root, "target", process.env.E2E_PROFILE ?? "debug", "server");

/** A started server of the test's own on a fresh SQLite file, with `settings` besides. */
export async function startOwnServer(name: string, settings: Record<string, string> = {}): Promise<OwnServer> {
  const db = join(mkdtempSync(join(tmpdir(), `solotab-${name}-`)), "solotab.db");
  const server = new OwnServer(await freePort(), { SOLOTAB_DB: db, ...settings });
  await server.start();
  return server;
}

/**
 * Runs `body` against a server of its own (`startOwnServer(name, settings)`) with `browsers`
 * fresh browser contexts on it; closes them and stops the server however `body` ends.
 */
export async function withOwnServer(
  browser: Browser,
  browsers: number,
  name: string,
  settings: Record<string, string>,
  body: (server: OwnServer, contexts: BrowserContext[]) => Promise<void>,
) {
  const server = await startOwnServer(name, settings);
  const contexts: BrowserContext[] = [];
  try {
    for (let i = 0; i < browsers; i++) contexts.push(await newContext(browser, { baseURL: server.url }));
    await body(server, contexts);
  } finally {
    for (const context of contexts) await context.close();
    await server.stop();
  }
}

/** A server of a test's own (the real binary), so that the test can stop, kill or restart it. */
export class OwnServer {
  private process?: ChildProcess;
  constructor(
    readonly port: number,
    /** Where its data lives (`SOLOTAB_DB` or `SOLOTAB_DATABASE_URL`) and any other setting. */
    private readonly settings: Record<string, string>,
  ) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    this.process = spawn(serverBinary, [], {
      cwd: root,
      stdio: "ignore",
      env: {
        ...process.env,
        LEPTOS_SITE_ADDR: `127.0.0.1:${this.port}`,
        LEPTOS_SITE_ROOT: join(root, "target", "site"),
        LEPTOS_OUTPUT_NAME: "solotab",
        SOLOTAB_MAX_REGISTRATIONS_PER_HOUR: "0",
        ...this.settings,
      },
    });
    await expect
      .poll(async () => (await fetch(`${this.url}/healthz`).catch(() => undefined))?.status, {
        timeout: 30_000,
      })
      .toBe(200);
  }

  /** Runs `server <args>` (an administrative task) on this server's database; throws if it fails. */
  runTask(...args: string[]) {
    const done = spawnSync(serverBinary, args, {
      cwd: root,
      env: { ...process.env, ...this.settings },
      encoding: "utf8",
    });
    if (done.status !== 0) throw new Error(`server ${args.join(" ")}: ${done.stderr}`);
    return done.stdout;
  }

  /** SIGTERM: a graceful shutdown, which closes every channel with "server restarting". */
  async stop() {
    await this.signal("SIGTERM");
  }

  /** SIGKILL: the process dies at once; its connections just drop. */
  async kill() {
    await this.signal("SIGKILL");
  }

  private async signal(signal: NodeJS.Signals) {
    const running = this.process;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((done) => running.once("exit", done));
    running.kill(signal);
    await exited;
  }
}

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((done) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => done(port));
    });
  });
}
