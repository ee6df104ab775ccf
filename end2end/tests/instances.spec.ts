import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "@playwright/test";
import {
  OwnServer,
  activeHome,
  connectionBanner,
  expect,
  freePort,
  newContext,
  premiumBody,
  registerViaApi,
  root,
  signIn,
  supersededAlert,
  test,
  uniqueName,
} from "./helpers";

// Two instances on one PostgreSQL schema behind nginx (round-robin, WebSocket upgrade), as
// the README's "Running several instances" sets them up. Each test starts its own.

const POSTGRES = process.env.SOLOTAB_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

class Deployment {
  readonly instances: OwnServer[];
  private nginx?: ChildProcess;
  /** Browsers opened on this deployment, closed with it (or their channels would go on
   * retrying, and their console errors land in the next test). */
  readonly browsers: BrowserContext[] = [];
  constructor(
    readonly port: number,
    ports: number[],
    databaseUrl: string,
    private readonly dir: string,
  ) {
    this.instances = ports.map(
      (p) => new OwnServer(p, { SOLOTAB_DATABASE_URL: databaseUrl, SOLOTAB_TRUSTED_PROXIES: "127.0.0.1" }),
    );
  }

  static async start(): Promise<Deployment> {
    // Named like the Rust tests' schemas, which drop those over an hour old.
    const schema = `solotab_test_${Math.floor(Date.now() / 1000)}_e2e${Math.random().toString(36).slice(2, 10)}`;
    execFileSync("psql", [POSTGRES, "-qc", `CREATE SCHEMA ${schema}`]);
    const sep = POSTGRES.includes("?") ? "&" : "?";
    const url = `${POSTGRES}${sep}options=-c%20search_path%3D${schema}`;
    const dir = mkdtempSync(join(tmpdir(), "solotab-nginx-"));
    // Started as root, nginx's workers run as nobody, and buffer large answers under `dir`.
    chmodSync(dir, 0o755);
    const deployment = new Deployment(await freePort(), [await freePort(), await freePort()], url, dir);
    for (const instance of deployment.instances) await instance.start();
    const [one, two] = deployment.instances;
    const config = readFileSync(join(root, "end2end", "nginx.conf"), "utf8")
      .replaceAll("@DIR@", dir)
      .replaceAll("@PORT@", String(deployment.port))
      .replaceAll("@ONE@", String(one.port))
      .replaceAll("@TWO@", String(two.port));
    writeFileSync(join(dir, "nginx.conf"), config);
    deployment.nginx = spawn("/usr/sbin/nginx", ["-p", dir, "-c", join(dir, "nginx.conf")], { stdio: "ignore" });
    await expect
      .poll(async () => (await fetch(`${deployment.url}/healthz`).catch(() => undefined))?.status, { timeout: 15_000 })
      .toBe(200);
    return deployment;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop() {
    for (const context of this.browsers) await context.close();
    for (const instance of this.instances) await instance.kill();
    const nginx = this.nginx;
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((done) => nginx.once("exit", done));
      nginx.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * The ports of the instances that answered `method path`, one entry per request, from
   * nginx's access log (`host:port`, or several when nginx tried more than one). A
   * WebSocket is logged when it closes.
   */
  answeredBy(method: string, path: string): string[] {
    const log = readFileSync(join(this.dir, "access.log"), "utf8");
    return log
      .split("\n")
      .map((line) => line.split(" "))
      .filter(([m, uri]) => m === method && uri === path)
      .map((fields) => fields.slice(2, -1).join(" "));
  }

  /** `127.0.0.1:port` of instance `n` (1 or 2). */
  address(n: 1 | 2) {
    return `127.0.0.1:${this.instances[n - 1].port}`;
  }
}

/** A browser whose every request nginx sends to instance `n` (1 or 2), or round-robin. */
async function browserOn(deployment: Deployment, contextOf: () => Promise<BrowserContext>, n?: 1 | 2) {
  const context = await contextOf();
  deployment.browsers.push(context);
  if (n) {
    await context.addCookies([{ name: "e2e_instance", value: String(n), url: deployment.url }]);
  }
  return context;
}

test("a sign-in through one instance is pushed to the tab whose channel is on the other", async ({ browser }) => {
  const deployment = await Deployment.start();
  try {
    const username = uniqueName("Two");
    const open = () => newContext(browser, { baseURL: deployment.url });
    const a = await browserOn(deployment, open, 1);
    await registerViaApi(a.request, username);
    const tabA = await a.newPage();
    await signIn(tabA, username);
    await expect(premiumBody(tabA)).toContainText("Question");

    const b = await browserOn(deployment, open, 2);
    const tabB = await b.newPage();
    await signIn(tabB, username);
    await expect(supersededAlert(tabA)).toBeVisible({ timeout: 5_000 });
    await expect(tabA.locator(".premium")).toHaveCount(0);
    await activeHome(tabB, username);
    // Each browser's sign-in and channel were on its own instance: the push crossed over.
    expect(deployment.answeredBy("POST", "/api/login")).toEqual([deployment.address(1), deployment.address(2)]);
    await expect.poll(() => deployment.answeredBy("GET", "/api/channel")).toContain(deployment.address(1));
  } finally {
    await deployment.stop();
  }
});

test("when the instance holding a tab's channel dies, the tab reconnects through nginx and stays active", async ({ browser }) => {
  const deployment = await Deployment.start();
  try {
    const username = uniqueName("Die");
    const open = () => newContext(browser, { baseURL: deployment.url });
    // Signed in, and its channel opened, on instance 1; then round-robin like everyone.
    const a = await browserOn(deployment, open, 1);
    await registerViaApi(a.request, username);
    const tabA = await a.newPage();
    await signIn(tabA, username);
    await a.clearCookies({ name: "e2e_instance" });

    await deployment.instances[0].kill();
    await expect(connectionBanner(tabA)).toBeVisible({ timeout: 10_000 });
    // nginx finds instance 1 gone and sends the reconnection to instance 2.
    await expect(connectionBanner(tabA)).toHaveCount(0, { timeout: 30_000 });
    await activeHome(tabA, username);
    await expect(supersededAlert(tabA)).toHaveCount(0);

    // The channel now lives on instance 2, and it is live: a sign-in there is pushed.
    const other = await fetch(`${deployment.url}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: "correct horse battery" }),
    });
    expect(other.status).toBe(200);
    await expect(supersededAlert(tabA)).toBeVisible({ timeout: 5_000 });
    // The channel that told it was on instance 2 (logged once it closed).
    await expect
      .poll(() => deployment.answeredBy("GET", "/api/channel").some((by) => by.endsWith(deployment.address(2))))
      .toBe(true);
  } finally {
    await deployment.stop();
  }
});
