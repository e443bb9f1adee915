package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The command must not link package testing: "mqttkeep broker" and
// "mqttkeep demo" use the test kit's cores (internal/embedbroker,
// internal/faultproxy), never package mqttkeeptest, whose constructors take
// a testing.TB.
func TestNoTestingLinked(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, ".").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var linked bool
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), ":")
		if pkg == "testing" {
			linked = true
		}
		for imp := range strings.FieldsSeq(imports) {
			if imp == "testing" {
				t.Errorf("%s imports testing", pkg)
			}
		}
	}
	if linked {
		t.Error("the command links package testing")
	}
}
