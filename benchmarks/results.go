package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// results collects every run's values.
type results struct {
	scen []scenario
	cs   []Contestant
	// vals[scenario][metric][contestant] holds one value per kept run.
	vals [][][][]float64
	// fails[scenario][contestant] holds the error of each failed run;
	// partial[scenario][contestant] the note of each kept but incomplete run.
	fails, partial [][][]string
}

func newResults(scen []scenario, cs []Contestant) *results {
	r := &results{scen: scen, cs: cs}
	for _, s := range scen {
		m := make([][][]float64, len(s.metrics))
		for i := range m {
			m[i] = make([][]float64, len(cs))
		}
		r.vals = append(r.vals, m)
		r.fails = append(r.fails, make([][]string, len(cs)))
		r.partial = append(r.partial, make([][]string, len(cs)))
	}
	return r
}

func (r *results) add(si, ci int, vals []float64, err error) {
	var inc *incomplete
	switch {
	case err == nil && len(vals) == len(r.scen[si].metrics):
	case errors.As(err, &inc) && len(vals) == len(r.scen[si].metrics):
		r.partial[si][ci] = append(r.partial[si][ci], inc.Error())
	default:
		if err == nil {
			err = fmt.Errorf("%d values for %d metrics", len(vals), len(r.scen[si].metrics))
		}
		r.fails[si][ci] = append(r.fails[si][ci], err.Error())
		return
	}
	for mi, v := range vals {
		r.vals[si][mi][ci] = append(r.vals[si][mi][ci], v)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// shortNames are used in the ratio column.
var shortNames = map[string]string{
	"paho.golang":      "paho",
	"autopaho":         "autopaho",
	"paho.mqtt.golang": "pmg",
	"raw TCP":          "raw",
}

func (r *results) print(w io.Writer, e *env) {
	fmt.Fprint(w, "| scenario |")
	for _, c := range r.cs {
		fmt.Fprintf(w, " %s |", c.Name())
	}
	fmt.Fprintln(w, " mqttkeep / peer |")
	fmt.Fprint(w, "|---|")
	for range r.cs {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w, "---|")
	keep := slices.IndexFunc(r.cs, func(c Contestant) bool { return c.Name() == "mqttkeep" })
	var notes []string
	for si, s := range r.scen {
		for mi, m := range s.metrics {
			fmt.Fprintf(w, "| %s |", m.row)
			for ci, c := range r.cs {
				fmt.Fprintf(w, " %s |", r.cell(si, mi, ci, e, c))
			}
			fmt.Fprintf(w, " %s |\n", r.ratios(si, mi, keep))
		}
		for ci, c := range r.cs {
			if f := r.fails[si][ci]; len(f) > 0 {
				notes = append(notes, fmt.Sprintf("%s, %s: %d failed run(s): %s", s.name, c.Name(), len(f), strings.Join(dedupe(f), "; ")))
			}
			if p := r.partial[si][ci]; len(p) > 0 {
				notes = append(notes, fmt.Sprintf("%s, %s: %d of its runs incomplete (kept, rate of what was delivered): %s", s.name, c.Name(), len(p), strings.Join(p, "; ")))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func (r *results) cell(si, mi, ci int, e *env, c Contestant) string {
	s := r.scen[si]
	if !s.applies(c.Caps()) {
		return "–"
	}
	v := r.vals[si][mi][ci]
	total := len(v) + len(r.fails[si][ci])
	if len(v) == 0 {
		if total == 0 {
			return "not run"
		}
		return fmt.Sprintf("failed (%d/%d)", len(r.fails[si][ci]), total)
	}
	u := s.metrics[mi].unit
	lo, hi := slices.Min(v), slices.Max(v)
	var out string
	if u == unitSecondsK {
		k := e.keepAlive.Seconds()
		med := median(v)
		out = fmt.Sprintf("%.2f s = %.2f K [%.2f–%.2f s = %.2f–%.2f K]", med, med/k, lo, hi, lo/k, hi/k)
	} else {
		out = fmt.Sprintf("%s [%s–%s]", formatValue(u, median(v), e), formatBare(u, lo), formatValue(u, hi, e))
	}
	if f := len(r.fails[si][ci]); f > 0 {
		out += fmt.Sprintf(" (%d/%d failed)", f, total)
	}
	if p := len(r.partial[si][ci]); p > 0 {
		out += fmt.Sprintf(" (%d incomplete)", p)
	}
	return out
}

func (r *results) ratios(si, mi, keep int) string {
	s := r.scen[si]
	if keep < 0 || !s.applies(r.cs[keep].Caps()) || len(r.vals[si][mi][keep]) == 0 {
		return "–"
	}
	mk := median(r.vals[si][mi][keep])
	var parts []string
	for ci, c := range r.cs {
		if ci == keep || !s.applies(c.Caps()) || len(r.vals[si][mi][ci]) == 0 {
			continue
		}
		p := median(r.vals[si][mi][ci])
		if p == 0 {
			continue
		}
		name := shortNames[c.Name()]
		if name == "" {
			name = c.Name()
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", name, mk/p))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

func formatValue(u unit, v float64, e *env) string {
	switch u {
	case unitSeconds:
		return fmt.Sprintf("%.2f s", v)
	case unitSecondsK:
		return fmt.Sprintf("%.2f s (%.2f K)", v, v/e.keepAlive.Seconds())
	case unitRate:
		return formatBare(u, v) + " msg/s"
	case unitBytes:
		return formatBare(u, v) + " KiB"
	case unitMicros:
		return formatBare(u, v) + " µs"
	default:
		return formatBare(u, v)
	}
}

// formatBare prints a value without its unit (for the low end of a range).
func formatBare(u unit, v float64) string {
	switch u {
	case unitSeconds, unitSecondsK:
		return fmt.Sprintf("%.2f", v)
	case unitRate:
		if v >= 1e6 {
			return fmt.Sprintf("%.2fM", v/1e6)
		}
		return fmt.Sprintf("%.1fk", v/1e3)
	case unitBytes:
		return fmt.Sprintf("%.1f", v/1024)
	case unitMicros:
		if v >= 100 {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func dedupe(s []string) []string {
	seen := map[string]int{}
	var out []string
	for _, x := range s {
		if _, ok := seen[x]; !ok {
			out = append(out, x)
		}
		seen[x]++
	}
	for i, x := range out {
		if n := seen[x]; n > 1 {
			out[i] = fmt.Sprintf("%s (×%d)", x, n)
		}
	}
	return out
}
