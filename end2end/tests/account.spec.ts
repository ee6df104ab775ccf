import { PASSWORD, activeHome, expect, newContext, openLogin, registerViaApi, signIn, test, uniqueName } from "./helpers";

const NEW_PASSWORD = "a much better passphrase";

test("the active tab changes the password; the old one stops working, the new one signs in", async ({ browser, page, request }) => {
  const username = uniqueName("Pwd");
  await registerViaApi(request, username);
  await signIn(page, username);

  // A wrong current password is said so, and changes nothing.
  await page.getByLabel("Current password").fill("not the password");
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByRole("alert")).toContainText("Your current password is not right");

  await page.getByLabel("Current password").fill(PASSWORD);
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Password changed" })).toBeVisible();
  // This tab stays signed in.
  await activeHome(page, username);

  // Another browser: the old password is refused, the new one signs in.
  const other = await (await newContext(browser)).newPage();
  await openLogin(other);
  await other.getByLabel("Username").fill(username);
  await other.getByLabel("Password").fill(PASSWORD);
  await other.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(other.getByRole("alert")).toContainText("Wrong username or password");
  await other.getByLabel("Password").fill(NEW_PASSWORD);
  await other.getByRole("button", { name: "Sign in", exact: true }).click();
  await activeHome(other, username);
  await other.context().close();
});
