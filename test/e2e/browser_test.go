//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotFile is the picture of the sign-in page that README.md shows. The
// test writes it when it is missing or when JWTGATE_UPDATE_SCREENSHOT=1, so
// that a test run does not rewrite a committed file with a picture that
// differs only in the caret; otherwise it writes the picture into the test's
// temporary folder.
const screenshotFile = "docs/signin.png"

// TestBrowser signs in with headless Chromium through nginx (ingress-nginx
// style config, TLS): it opens a page, lands on the sign-in form, types the
// user name and password, submits, and reads the upstream's answer on the page
// it first asked for.
func TestBrowser(t *testing.T) {
	requirePackages(t, true, true)
	s := newStack(t, ingressStyle)
	original := s.origin + "/some/page?from=browser&q=a%20b"

	ctx, bounded := startChromium(t, s)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// 1. The protected page sends the browser to the sign-in form.
	step("start chromium", chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	step("open "+original, bounded(
		chromedp.Navigate(original),
		chromedp.WaitVisible(chromedp.ID("username")),
	))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	step("location", err)
	if !strings.HasPrefix(loc, s.origin+"/jwtgate/login?rd=") {
		t.Fatalf("the browser is at %q, want the sign-in page %s/jwtgate/login?rd=...", loc, s.origin)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	step("title", err)
	if title != "Sign in" {
		t.Errorf("sign-in page title %q, want %q", title, "Sign in")
	}

	// 2. Type the user name and password; picture the form.
	step("type the credentials", bounded(
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), alicePassword),
	))
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	step("screenshot", err)
	saveScreenshot(t, s, shot, screenshotFile)

	// 3. Submit: the browser lands on the page it asked for, with the
	// upstream's answer naming the signed-in user.
	step("submit", bounded(chromedp.Click(chromedp.CSS(`button[type="submit"]`))))
	text := waitForText(t, ctx, "upstream saw")
	loc, err = chromedp.Run(ctx, chromedp.Location())
	step("location", err)
	if loc != original {
		t.Errorf("after signing in the browser is at %q, want %q", loc, original)
	}
	for _, want := range []string{
		"upstream saw GET /some/page?from=browser&q=a%20b",
		"X-Auth-User: alice",
		"X-Auth-Roles: user",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page after signing in lacks %q:\n%s", want, text)
		}
	}

	// 4. Sign out with the button of /jwtgate/logout. The browser goes to rd
	// (/bye), which, signed out, sends it to the sign-in form again.
	step("sign out", bounded(
		chromedp.Navigate(s.origin+"/jwtgate/logout?rd=%2Fbye"),
		chromedp.Click(chromedp.CSS(`form[action="/jwtgate/logout"] button`)),
	))
	waitForText(t, ctx, "Sign in")
	step("the sign-in form after signing out", bounded(chromedp.WaitVisible(chromedp.ID("username"))))
	loc, err = chromedp.Run(ctx, chromedp.Location())
	step("location", err)
	if !strings.HasPrefix(loc, s.origin+"/jwtgate/login?rd=") || !strings.HasSuffix(loc, "bye") {
		t.Errorf("after signing out the browser is at %q, want the sign-in page with rd .../bye", loc)
	}
}

// waitForText waits up to 10 s for the page's text to hold want, and returns it.
func waitForText(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		text, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("body")))
		cancel()
		if err == nil && strings.Contains(text, want) {
			return text
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("the page at %q does not show %q after 10 s (%v):\n%s", loc, want, err, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func saveScreenshot(t *testing.T, s *stack, shot []byte, file string) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 300 {
		t.Fatalf("the screenshot is %dx%d", b.Dx(), b.Dy())
	}
	dst := filepath.Join(repoRoot, file)
	if _, err := os.Stat(dst); err == nil && os.Getenv("JWTGATE_UPDATE_SCREENSHOT") != "1" {
		dst = filepath.Join(s.dir, filepath.Base(file))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("sign-in page screenshot: %s", dst)
}

// startChromium starts headless Chromium for a walk through s (app.test
// mapped to loopback, the test server's key trusted); it stops when the test
// ends. Its output is printed when the test fails. bounded runs actions with
// 10 s each; the first action (which starts the browser) must run on ctx
// itself.
func startChromium(t *testing.T, s *stack) (ctx context.Context, bounded func(actions ...chromedp.Action[chromedp.Void]) error) {
	t.Helper()
	chromeLog, err := os.Create(filepath.Join(s.dir, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chromeLog.Close() })
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(chromeLog.Name()); err == nil && len(b) > 0 {
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("---- chromium output ----\n%s", b)
			}
		}
	})

	// One deadline for everything the browser does; when it passes, chromedp
	// stops the browser and the test fails.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumBin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("host-resolver-rules", "MAP "+appHost+" 127.0.0.1"),
		// Trust exactly the test server's key (its certificate is signed by the
		// test CA, which Chromium's store does not hold).
		chromedp.Flag("ignore-certificate-errors-spki-list", serverSPKI),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(640, 560),
		chromedp.CombinedOutput(chromeLog),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	t.Cleanup(cancelBrowser)

	// The first action starts the browser and must run on ctx itself; later
	// ones get 10 s each.
	bounded = func(actions ...chromedp.Action[chromedp.Void]) error {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return chromedp.Do(c, actions...)
	}

	return ctx, bounded
}
