package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// promSample is one sample line of Prometheus's text format: a metric
// name, optional labels and a value.
var promSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (\S+)$`)

// parsePrometheus checks text against the exposition format (every
// sample's family declared by a TYPE line before it, values numbers) and
// returns the samples by name with labels.
func parsePrometheus(text string) (map[string]float64, error) {
	samples := map[string]float64{}
	typed := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if len(f) != 4 || !map[string]bool{"counter": true, "gauge": true, "histogram": true, "summary": true, "untyped": true}[f[3]] {
				return nil, fmt.Errorf("line %d: bad TYPE line %q", n, line)
			}
			typed[f[2]] = f[3]
		case strings.HasPrefix(line, "# HELP "), line == "":
		case strings.HasPrefix(line, "#"):
			return nil, fmt.Errorf("line %d: unknown comment %q", n, line)
		default:
			m := promSample.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: not a sample: %q", n, line)
			}
			if typed[m[1]] == "" {
				return nil, fmt.Errorf("line %d: %s has no TYPE line before it", n, m[1])
			}
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value %q: %v", n, m[3], err)
			}
			samples[m[1]+m[2]] = v
		}
	}
	return samples, sc.Err()
}

// The broker's admin address serves /metrics that parse as Prometheus
// text and count what a client did, and /debug/pprof.
func TestBrokerAdminServesPrometheusMetrics(t *testing.T) {
	admin := freeAddr(t)
	b := startRealBroker(t, t.TempDir(), "", "--flush", "none", "--admin", admin)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("m"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 3 {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	text := httpGet(t, "http://"+admin+"/metrics")
	samples, err := parsePrometheus(text)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, text)
	}
	if got := samples[`sluice_broker_requests_total{api="Produce"}`]; got < 3 {
		t.Errorf("Produce requests counted %v, want at least 3\n%s", got, text)
	}
	if got := samples["sluice_broker_appends_total"]; got < 3 {
		t.Errorf("appends counted %v, want at least 3", got)
	}
	if samples["sluice_broker_serving"] != 1 {
		t.Errorf("sluice_broker_serving is %v, want 1", samples["sluice_broker_serving"])
	}
	if !strings.Contains(httpGet(t, "http://"+admin+"/debug/pprof/"), "goroutine") {
		t.Error("/debug/pprof/ does not list the profiles")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", url, resp.Status, err, body)
	}
	return string(body)
}

// The parser the test relies on refuses what is not the format.
func TestParsePrometheusRefusesMalformedText(t *testing.T) {
	for _, bad := range []string{
		"x 1\n", // no TYPE
		"# TYPE x counter\nx one\n",
		"# TYPE x counter\nx{a=b} 1\n",
		"# TYPE x bogus\nx 1\n",
	} {
		if _, err := parsePrometheus(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
	if _, err := parsePrometheus("# HELP x X.\n# TYPE x gauge\nx{api=\"Fetch\"} 2\n"); err != nil {
		t.Errorf("refused a good exposition: %v", err)
	}
}
