package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// durableChildEnv set to "LIB,CALLERS,N" makes this program (or its test
// binary) run one durable enqueue of N messages with LIB from CALLERS
// goroutines and print how many it enqueued: countSyncs runs it under
// strace.
const durableChildEnv = "MQTTKEEP_BENCH_DURABLE_CHILD"

func durableChildMain(spec string) {
	f := strings.Split(spec, ",")
	if len(f) != 3 {
		fmt.Fprintf(os.Stderr, "%s=%q: want LIB,CALLERS,N\n", durableChildEnv, spec)
		os.Exit(2)
	}
	callers, err1 := strconv.Atoi(f[1])
	n, err2 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := &env{keepAlive: 30 * time.Second, scale: 1}
	if _, _, err := durableRun(ctx, e, mqttkeepContestant{}, f[0], callers, n); err != nil {
		fmt.Fprintln(os.Stderr, "durable child:", err)
		os.Exit(1)
	}
	fmt.Println(ops.Load())
	os.Exit(0)
}

// countSyncs runs one durable enqueue in a child under strace -f and
// returns the fsync and fdatasync calls of the whole child (client, store
// and broker: the embedded broker keeps nothing on disk) per message.
func countSyncs(exe, lib string, callers, n int) (float64, error) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		return 0, fmt.Errorf("fsyncs per message need strace: %w", err)
	}
	summary, err := os.CreateTemp("", "mqttkeep-bench-strace-")
	if err != nil {
		return 0, err
	}
	summary.Close()
	defer os.Remove(summary.Name())
	cmd := exec.Command(strace, "--seccomp-bpf", "-f", "-qq", "-c", "-e", "trace=fsync,fdatasync", "-o", summary.Name(), exe)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d", durableChildEnv, lib, callers, n))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("strace child: %w", err)
	}
	msgs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || msgs == 0 {
		return 0, fmt.Errorf("strace child printed %q", out)
	}
	b, err := os.ReadFile(summary.Name())
	if err != nil {
		return 0, err
	}
	var calls float64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && (f[len(f)-1] == "fsync" || f[len(f)-1] == "fdatasync") {
			v, _ := strconv.ParseFloat(f[3], 64)
			calls += v
		}
	}
	return calls / msgs, nil
}
