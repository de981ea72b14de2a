package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium finds Debian's headless browser. CI installs it (.ci/run), and
// there its absence is a failure; elsewhere the test says it cannot run.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed; .ci/run installs Debian's chromium package")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	return path
}

// renderDOM loads a page in headless Chromium, lets its scripts run, and
// returns the DOM it ends with.
func renderDOM(t *testing.T, page string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium(t), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", "file://"+page)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium on %s: %v", page, err)
	}
	return string(out)
}

// TestFailingReportRendersInChromium renders a failing run's report and
// its porcupine page in headless Chromium: the page keeps its charts, its
// anomalies and the frame of porcupine's page, and porcupine's script
// draws the partition's operations.
func TestFailingReportRendersInChromium(t *testing.T) {
	chromium(t)
	dir := t.TempDir()
	out := failingReport(t, dir)
	page := renderDOM(t, filepath.Join(out, "report.html"))
	for _, want := range []string{`<img src="data:image/svg+xml;base64,`, "<h2>Anomalies</h2>", `<iframe src="porcupine-`} {
		if !strings.Contains(page, want) {
			t.Errorf("the rendered report lacks %q", want)
		}
	}
	if n := strings.Count(page, "<img "); n < 3 {
		t.Errorf("the rendered report has %d charts, want 3", n)
	}
	pages, _ := filepath.Glob(filepath.Join(out, "porcupine-*.html"))
	if len(pages) == 0 {
		t.Fatal("no porcupine page")
	}
	raw, _ := os.ReadFile(pages[0])
	viz := renderDOM(t, pages[0])
	// porcupine's script draws one rectangle per operation; the file
	// itself holds none.
	if drawn := strings.Count(viz, "<rect") - strings.Count(string(raw), "<rect"); drawn < 2 {
		t.Errorf("porcupine's page drew %d operations in Chromium", drawn)
	}
}
