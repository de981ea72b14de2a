package reports

import (
	"bytes"
	"strings"
	"testing"
)

// The coverage chart names fault kinds and probes apart in its legend,
// keeps its title short (the page's heading names the scenarios), and
// labels its seed axis with whole numbers.
func TestSwarmCoverageChart(t *testing.T) {
	s := Swarm{
		Title:  "sluice swarm: " + strings.Repeat("a-scenario-with-a-long-name, ", 12) + "seeds 1 to 625",
		Faults: []Count{{Name: "kill", Seeds: 1383}, {Name: "corrupt", Seeds: 237}},
		Probes: []Count{{Name: "storage/torn-tail-cut", Seeds: 612}, {Name: "storage/never-hit", Seeds: 0}},
	}
	var svg bytes.Buffer
	if err := s.coverageChart().WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	text := svg.String()
	for _, want := range []string{">fault kinds<", ">probes<", ">Seeds that reached each fault kind and probe<", ">kill<", ">storage/never-hit<", ">1000<", ">1<", "(log scale)<"} {
		if !strings.Contains(text, want) {
			t.Errorf("coverage chart lacks %q", want)
		}
	}
	for _, unwanted := range []string{"a-scenario-with-a-long-name", ".00<"} {
		if strings.Contains(text, unwanted) {
			t.Errorf("coverage chart holds %q", unwanted)
		}
	}
	// On the log scale a path one seed reached still shows; one none
	// reached shows nothing.
	if coverageHeight(1) <= 0 || coverageHeight(0) != 0 || coverageHeight(5000) <= coverageHeight(1) {
		t.Errorf("bar heights: 0 seeds %g, 1 seed %g, 5000 seeds %g", coverageHeight(0), coverageHeight(1), coverageHeight(5000))
	}
}
