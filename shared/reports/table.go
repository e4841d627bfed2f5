package reports

import (
	"encoding/csv"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Table is a report flattened for display: the same numbers as the report's typed rows, as text,
// each with its drill-down handle. A console renders tables and charts from these without knowing
// each report; CSV and the CLI's table format are written from them.
type Table struct {
	Title    string   `json:"title"`
	Currency string   `json:"currency,omitempty"`
	Columns  []Column `json:"columns"`
	Rows     [][]Cell `json:"rows"`
	// Chart names the columns worth plotting over the first column (periods or rows).
	Chart []string `json:"chart,omitempty"`
}

// Column is one column of a table.
type Column struct {
	Key   string     `json:"key"`
	Label string     `json:"label"`
	Type  ColumnType `json:"type"`
}

// ColumnType says how a column's cells read.
type ColumnType string

// Column types.
const (
	TextColumn    ColumnType = "text"
	CountColumn   ColumnType = "count"
	MoneyColumn   ColumnType = "money"   // decimal in the table's currency
	PercentColumn ColumnType = "percent" // a percentage with two decimals
	NumberColumn  ColumnType = "number"  // a decimal that is not money (days, credited orders)
)

// Cell is one value: its text ("" when not available) and its drill-down handle.
type Cell struct {
	Text  string `json:"text"`
	Drill string `json:"drill,omitempty"`
}

func text(s string) Cell { return Cell{Text: s} }

func numCell(n Num) Cell { return Cell{Text: strconv.FormatInt(n.N, 10), Drill: n.Drill} }

func numPtr(n *Num) Cell {
	if n == nil {
		return Cell{}
	}
	return numCell(*n)
}

func amountCell(a Amount) Cell { return Cell{Text: a.Decimal(), Drill: a.Drill} }

func amountPtr(a *Amount) Cell {
	if a == nil {
		return Cell{}
	}
	return amountCell(*a)
}

// Tabler is implemented by every report.
type Tabler interface {
	Tables() []Table
}

// plainNumber matches what this package writes for numbers, which a spreadsheet reads as a
// number and never as a formula.
var plainNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// CSVSafe escapes a cell that a spreadsheet would run as a formula: one that starts with =, +,
// -, @, a tab or a carriage return gets a leading apostrophe, which spreadsheets show as text.
// UTM values are typed by anyone who can make a link, so a campaign named
// =HYPERLINK("http://evil.example","x") must reach the merchant's spreadsheet as text. Numbers
// this package wrote (a negative net, say) are left as they are: they cannot be formulas.
func CSVSafe(s string) string {
	if s == "" || plainNumber.MatchString(s) {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// WriteCSV writes tables as CSV: per table, its title line (with the currency), the header and
// the rows, and a blank line between tables.
func WriteCSV(w io.Writer, tables []Table) error {
	cw := csv.NewWriter(w)
	for i, t := range tables {
		if i > 0 {
			if err := cw.Write([]string{}); err != nil {
				return err
			}
		}
		title := t.Title
		if t.Currency != "" {
			title += " (" + t.Currency + ")"
		}
		if err := cw.Write([]string{CSVSafe(title)}); err != nil {
			return err
		}
		head := make([]string, len(t.Columns))
		for j, c := range t.Columns {
			head[j] = CSVSafe(c.Label)
		}
		if err := cw.Write(head); err != nil {
			return err
		}
		for _, r := range t.Rows {
			rec := make([]string, len(r))
			for j, c := range r {
				rec[j] = CSVSafe(c.Text)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteText writes tables aligned in columns, for a terminal.
func WriteText(w io.Writer, tables []Table) error {
	for i, t := range tables {
		if i > 0 {
			fmt.Fprintln(w)
		}
		title := t.Title
		if t.Currency != "" {
			title += " (" + t.Currency + ")"
		}
		fmt.Fprintln(w, title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := make([]string, len(t.Columns))
		for j, c := range t.Columns {
			head[j] = c.Label
		}
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, r := range t.Rows {
			rec := make([]string, len(r))
			for j, c := range r {
				rec[j] = printable(c.Text)
				if rec[j] == "" {
					rec[j] = "-"
				}
			}
			fmt.Fprintln(tw, strings.Join(rec, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// printable keeps a terminal safe from control characters in UTM values.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func formatFixed(v int64, decimals int) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := strconv.FormatInt(v, 10)
	for len(s) <= decimals {
		s = "0" + s
	}
	out := s[:len(s)-decimals] + "." + s[len(s)-decimals:]
	if neg {
		out = "-" + out
	}
	return out
}

// percent is part ÷ whole as a percentage with two decimals, rounded half to even ("" when
// whole is 0).
func percent(part, whole int64) string {
	if whole == 0 {
		return ""
	}
	return formatFixed(div(part*10000, whole), 2)
}
