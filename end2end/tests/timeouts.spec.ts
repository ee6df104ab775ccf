import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OwnServer, expect, freePort, newContext, registerViaApi, signIn, test, uniqueName } from "./helpers";

// A server of this test's own with `--absolute-timeout 4s`: a tab is told, by itself, when
// its sign-in ends, and lands on the login page saying why.

test("absolute timeout: the tab is told its sign-in expired and must sign in again", async ({ browser }) => {
  const db = join(mkdtempSync(join(tmpdir(), "solotab-timeout-")), "solotab.db");
  const server = new OwnServer(await freePort(), { SOLOTAB_DB: db, SOLOTAB_ABSOLUTE_TIMEOUT: "4s" });
  await server.start();
  const context = await newContext(browser, { baseURL: server.url });
  try {
    const username = uniqueName("Exp");
    await registerViaApi(context.request, username);
    const page = await context.newPage();
    await signIn(page, username);
    await expect(page.getByText("Your sign-in in this tab has expired")).toBeVisible({ timeout: 10_000 });
    await expect(page).toHaveURL(/\/login$/);
    await expect(page.locator(".premium")).toHaveCount(0);
  } finally {
    await context.close();
    await server.stop();
  }
});
