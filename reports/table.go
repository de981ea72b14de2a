// Package reports turns run results into what people read: terminal
// tables, latency histograms, PNG/SVG charts and HTML pages.
package reports

import (
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter"
)

// WriteTable renders rows under a header as a terminal table.
func WriteTable(w io.Writer, header []string, rows [][]string) error {
	return writeTable(w, header, rows)
}

// writeTable is WriteTable with extra table options.
func writeTable(w io.Writer, header []string, rows [][]string, opts ...tablewriter.Option) error {
	t := tablewriter.NewTable(w, opts...)
	t.Header(toAny(header)...)
	for _, row := range rows {
		if err := t.Append(toAny(row)...); err != nil {
			return fmt.Errorf("table row: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	return nil
}

func toAny(s []string) []any {
	a := make([]any, len(s))
	for i, v := range s {
		a[i] = v
	}
	return a
}
