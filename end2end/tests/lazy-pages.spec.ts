import { type Page } from "@playwright/test";
import { expect, hydrated, registerViaApi, signIn, test, uniqueName } from "./helpers";

// The "Your sessions" and admin pages are lazy routes in a split build (`cargo leptos build
// --split`, as the release build is made; the test command sets E2E_SPLIT=1 for it): their
// code is in wasm files of their own, fetched when a page first needs them. A build without
// --split (`cargo leptos watch`, the debug build) has them as ordinary pages, and must work.
const split = process.env.E2E_SPLIT === "1";

/** The lazily loaded wasm files `page` fetches from now on (file names only). */
function lazyFiles(page: Page): string[] {
  const seen: string[] = [];
  page.on("request", (request) => {
    const file = new URL(request.url()).pathname.match(/^\/pkg\/((?:split_|chunk_)[^/]*\.wasm)$/);
    if (file) seen.push(file[1]);
  });
  return seen;
}

test("the sessions page's code is fetched when the page is first opened, not before", async ({ page, request }) => {
  const username = uniqueName("Lazy");
  await registerViaApi(request, username);
  const fetched = lazyFiles(page);
  await signIn(page, username);
  expect(fetched, "the login and home pages need no lazily loaded code").toEqual([]);

  await page.getByRole("link", { name: "Your sessions" }).click();
  await expect(page.getByRole("heading", { name: "Your sessions" })).toBeVisible();
  expect(fetched.some((file) => file.includes("sessions_page"))).toBe(split);
  expect(fetched.some((file) => file.includes("admin_page"))).toBe(false);
  if (!split) expect(fetched, "an unsplit build has no lazily loaded files").toEqual([]);
});

test("opened directly, a lazily loaded page sends a tab without a sign-in to the login page", async ({ page }) => {
  const fetched = lazyFiles(page);
  // The server renders the route and redirects: a new page load has no sign-in, which lives
  // only in a tab's memory.
  const response = await page.goto("/admin");
  expect(response?.request().redirectedFrom()?.url()).toMatch(/\/admin$/);
  await hydrated(page);
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  expect(fetched, "the login page needs no lazily loaded code").toEqual([]);
});
