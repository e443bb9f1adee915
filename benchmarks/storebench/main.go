// Command storebench measures durable message stores on this machine's
// disk: the file store of github.com/mqttkeep/mqttkeep/filestore, a bbolt
// candidate for the same job, and the file stores of paho.golang and
// paho.mqtt.golang.
//
//	go run ./storebench                      # every scenario, 5 interleaved runs
//	go run ./storebench -scenario seq,par64 -runs 3 -dur 2s
//	go run ./storebench -syncs               # also count fsyncs per message (strace)
//
// Progress goes to stderr; stdout gets a header (machine, load) and one
// markdown table: median [min–max] over the runs.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	var (
		scenarioFlag = flag.String("scenario", "all", "comma-separated scenarios: seq, par64, load, compact (or all)")
		only         = flag.String("only", "", "comma-separated contestants (default: all)")
		runs         = flag.Int("runs", 5, "runs per scenario and contestant, interleaved")
		dur          = flag.Duration("dur", time.Second, "seq and par64: how long each run puts")
		records      = flag.Int("records", 100_000, "load and compact: N, the live records")
		root         = flag.String("dir", os.TempDir(), "where the stores go (the disk being measured)")
		syncs        = flag.Bool("syncs", false, "also run seq and par64 once per contestant under strace and count fsync/fdatasync calls per message")
		child        = flag.Bool("child", false, "internal: run one scenario for -syncs and print the message count")
		cpuProfile   = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	)
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "storebench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	o := runOpts{dur: *dur, records: *records}
	if *child {
		if err := childMain(*scenarioFlag, *only, *root, o); err != nil {
			fmt.Fprintln(os.Stderr, "storebench child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*scenarioFlag, *only, *runs, *root, *syncs, o); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func selectScenarios(flagValue string) ([]scenario, error) {
	all := scenarios()
	if flagValue == "all" {
		return all, nil
	}
	var sel []scenario
	for name := range strings.SplitSeq(flagValue, ",") {
		i := slices.IndexFunc(all, func(s scenario) bool { return s.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q", name)
		}
		sel = append(sel, all[i])
	}
	return sel, nil
}

func selectContestants(flagValue string) ([]contestant, error) {
	all := contestants()
	if flagValue == "" {
		return all, nil
	}
	var sel []contestant
	for name := range strings.SplitSeq(flagValue, ",") {
		i := slices.IndexFunc(all, func(c contestant) bool { return strings.EqualFold(c.name, strings.TrimSpace(name)) })
		if i < 0 {
			return nil, fmt.Errorf("unknown contestant %q", name)
		}
		sel = append(sel, all[i])
	}
	return sel, nil
}

func run(scenarioFlag, only string, runs int, root string, syncs bool, o runOpts) error {
	if runs < 1 || runs > 100 {
		return fmt.Errorf("-runs %d: want 1 to 100", runs)
	}
	sel, err := selectScenarios(scenarioFlag)
	if err != nil {
		return err
	}
	cs, err := selectContestants(only)
	if err != nil {
		return err
	}
	res := map[string]map[string][]float64{} // metric → contestant → values
	var rows []metric
	for _, s := range sel {
		rows = append(rows, s.metrics...)
	}
	var loads []float64
	start := time.Now()
	for i := range runs {
		for _, s := range sel {
			// Rotate the order each run so that no contestant always
			// follows the same one.
			for j := range cs {
				c := cs[(i+j)%len(cs)]
				if !s.applies(c) {
					continue
				}
				loads = append(loads, loadAvg())
				dir, cleanup, err := fresh(root)
				if err != nil {
					return err
				}
				t0 := time.Now()
				vals, err := s.run(c, dir, o)
				cleanup()
				if err != nil {
					return fmt.Errorf("%s %s: %w", s.name, c.name, err)
				}
				for k, m := range s.metrics {
					if res[m.name] == nil {
						res[m.name] = map[string][]float64{}
					}
					res[m.name][c.name] = append(res[m.name][c.name], vals[k])
				}
				fmt.Fprintf(os.Stderr, "[%s] run %d/%d %-15s %v (%.1fs)\n", s.name, i+1, runs, c.name, vals, time.Since(t0).Seconds())
			}
		}
	}
	if syncs {
		rows = append(rows, metric{"1 caller: fsyncs per message", "x"}, metric{"64 callers: fsyncs per message", "x"})
		for _, c := range cs {
			for k, sc := range []string{"seq", "par64"} {
				v, err := countSyncs(sc, c.name, root, o)
				if err != nil {
					return fmt.Errorf("-syncs %s %s: %w", sc, c.name, err)
				}
				name := rows[len(rows)-2+k].name
				if res[name] == nil {
					res[name] = map[string][]float64{}
				}
				res[name][c.name] = []float64{v}
				fmt.Fprintf(os.Stderr, "[syncs %s] %-15s %.3f fsyncs/message\n", sc, c.name, v)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "total %.0fs\n", time.Since(start).Seconds())
	printHeader(root, runs, o, cs, loads)
	printTable(rows, cs, res, o)
	printRatios(rows, cs, res, o)
	return nil
}

// loadAvg is the 1-minute load average (0 if unknown).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func printHeader(root string, runs int, o runOpts, cs []contestant, loads []float64) {
	fmt.Printf("## Durable store benchmarks\n\n")
	fmt.Printf("- date: %s; %s %s/%s, NumCPU %d\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if out, err := exec.Command("df", "-h", root).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		fmt.Printf("- disk (df -h %s): `%s`\n", root, strings.Join(strings.Fields(lines[len(lines)-1]), " "))
	}
	if len(loads) > 0 {
		fmt.Printf("- 1-minute load average before each run: %.2f to %.2f (median %.2f)\n", slices.Min(loads), slices.Max(loads), median(loads))
	}
	fmt.Printf("- %d interleaved runs (run i of every contestant, then run i+1; order rotated); seq/par64: %v of 64-byte puts each; load/compact: N = %d\n", runs, o.dur, o.records)
	for _, c := range cs {
		fmt.Printf("- %s: %s\n", c.name, c.note)
	}
	fmt.Printf("- cells: median [min–max]; – = does not apply\n\n")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func format(unit string, v float64) string {
	switch {
	case v < 0:
		return "–"
	case unit == "ops/s" || unit == "µs":
		return strconv.FormatFloat(v, 'f', 0, 64)
	case unit == "x" && v == float64(int64(v)):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case unit == "x":
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func printTable(rows []metric, cs []contestant, res map[string]map[string][]float64, o runOpts) {
	fmt.Print("| metric |")
	for _, c := range cs {
		fmt.Printf(" %s |", c.name)
	}
	fmt.Print("\n|---|")
	for range cs {
		fmt.Print("---|")
	}
	fmt.Println()
	for _, m := range rows {
		fmt.Printf("| %s (%s) |", strings.ReplaceAll(m.name, "N", strconv.Itoa(o.records)), m.unit)
		for _, c := range cs {
			v := res[m.name][c.name]
			switch {
			case len(v) == 0 || v[0] < 0:
				fmt.Print(" – |")
			case len(v) == 1:
				fmt.Printf(" %s |", format(m.unit, v[0]))
			default:
				fmt.Printf(" %s [%s–%s] |", format(m.unit, median(v)), format(m.unit, slices.Min(v)), format(m.unit, slices.Max(v)))
			}
		}
		fmt.Println()
	}
}

// countSyncs runs scenario sc of contestant name once in a child under
// strace and returns the fsync and fdatasync calls per message.
func countSyncs(sc, name, root string, o runOpts) (float64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	summary, err := os.CreateTemp("", "storebench-strace-")
	if err != nil {
		return 0, err
	}
	summary.Close()
	defer os.Remove(summary.Name())
	cmd := exec.Command("strace", "-f", "-qq", "-c", "-e", "trace=fsync,fdatasync", "-o", summary.Name(),
		exe, "-child", "-scenario", sc, "-only", name, "-dir", root, "-dur", o.dur.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, err
	}
	msgs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || msgs == 0 {
		return 0, fmt.Errorf("child printed %q", out)
	}
	b, err := os.ReadFile(summary.Name())
	if err != nil {
		return 0, err
	}
	var calls float64
	sc2 := bufio.NewScanner(bytes.NewReader(b))
	for sc2.Scan() {
		f := strings.Fields(sc2.Text())
		if len(f) >= 5 && (f[len(f)-1] == "fsync" || f[len(f)-1] == "fdatasync") {
			n, _ := strconv.ParseFloat(f[3], 64)
			calls += n
		}
	}
	return calls / msgs, nil
}

// childMain runs one per-message scenario once and prints how many
// messages it put.
func childMain(sc, name, root string, o runOpts) error {
	sel, err := selectScenarios(sc)
	if err != nil {
		return err
	}
	cs, err := selectContestants(name)
	if err != nil {
		return err
	}
	dir, cleanup, err := fresh(root)
	if err != nil {
		return err
	}
	defer cleanup()
	if _, err := sel[0].run(cs[0], dir, o); err != nil {
		return err
	}
	fmt.Println(ops.Load())
	return nil
}

// printRatios prints, for the throughput and latency rows, the file store's
// value divided by each other contestant's in the same run (run i of both
// ran back to back, so the machine's load drifts less between them): the
// median of those ratios with their range.
func printRatios(rows []metric, cs []contestant, res map[string]map[string][]float64, o runOpts) {
	const base = "filestore"
	var others []contestant
	for _, c := range cs {
		if c.name != base {
			others = append(others, c)
		}
	}
	if len(others) == 0 || len(others) == len(cs) {
		return
	}
	fmt.Printf("\n%s ÷ each contestant, run by run (median [min–max] of the per-run ratios; rates: above 1 is better for %s, latencies: below 1):\n\n| metric |", base, base)
	for _, c := range others {
		fmt.Printf(" %s |", c.name)
	}
	fmt.Print("\n|---|")
	for range others {
		fmt.Print("---|")
	}
	fmt.Println()
	for _, m := range rows {
		if m.unit != "ops/s" && m.unit != "µs" || strings.Contains(m.name, "fsync") {
			continue
		}
		fmt.Printf("| %s |", strings.ReplaceAll(m.name, "N", strconv.Itoa(o.records)))
		b := res[m.name][base]
		for _, c := range others {
			v := res[m.name][c.name]
			var r []float64
			for i := range min(len(b), len(v)) {
				if b[i] > 0 && v[i] > 0 {
					r = append(r, b[i]/v[i])
				}
			}
			if len(r) == 0 {
				fmt.Print(" – |")
				continue
			}
			fmt.Printf(" %s [%s–%s] |", ratio(median(r)), ratio(slices.Min(r)), ratio(slices.Max(r)))
		}
		fmt.Println()
	}
}

func ratio(v float64) string {
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
