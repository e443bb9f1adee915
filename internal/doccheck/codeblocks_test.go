package doccheck

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/build"
	"go/doc/comment"
	"go/format"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// knownImports are the packages a fragment may use without importing
// them, by the name it uses them under.
var knownImports = map[string]string{
	"bytes":        "bytes",
	"context":      "context",
	"errors":       "errors",
	"expvar":       "expvar",
	"fmt":          "fmt",
	"http":         "net/http",
	"io":           "io",
	"json":         "encoding/json",
	"log":          "log",
	"net":          "net",
	"os":           "os",
	"signal":       "os/signal",
	"slog":         "log/slog",
	"strconv":      "strconv",
	"strings":      "strings",
	"sync":         "sync",
	"atomic":       "sync/atomic",
	"synctest":     "testing/synctest",
	"syscall":      "syscall",
	"testing":      "testing",
	"time":         "time",
	"tls":          "crypto/tls",
	"url":          "net/url",
	"mqttkeep":     "github.com/mqttkeep/mqttkeep",
	"filestore":    "github.com/mqttkeep/mqttkeep/filestore",
	"mqttkeeptest": "github.com/mqttkeep/mqttkeep/mqttkeeptest",
}

// A codeBlock is one block of Go from a document.
type codeBlock struct {
	file string // relative to the repository root
	line int    // of the block's first line in file
	code string
}

func (b codeBlock) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// TestCodeBlocksCompile writes every Go block of the documentation into a
// package of its own, in a module that a workspace joins to this one, and
// runs go vet over them: a block that does not compile, or that vet
// flags, fails the test at its line in the document. It uses the build
// and module caches and no network (GOPROXY=off): every module it needs
// is one this module's own build needs.
func TestCodeBlocksCompile(t *testing.T) {
	root := repoRoot(t)
	docs := []string{filepath.Join(root, "README.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, more...)
	var blocks []codeBlock
	for _, path := range docs {
		bs, err := markdownGoBlocks(root, path)
		if err != nil {
			t.Fatal(err)
		}
		if path == docs[0] && len(bs) == 0 {
			t.Errorf("README.md has no ```go block: it shows one example that compiles")
		}
		blocks = append(blocks, bs...)
	}
	for _, p := range publicPackages {
		bs, err := quickStartBlocks(root, p.dir)
		if err != nil {
			t.Fatal(err)
		}
		if p.dir == "." && len(bs) == 0 {
			t.Errorf("the package doc of mqttkeep has no code under its Quick start heading")
		}
		blocks = append(blocks, bs...)
	}

	work := t.TempDir()
	mod := filepath.Join(work, "blocks")
	writeFile(t, filepath.Join(work, "go.work"), fmt.Sprintf("go 1.25\n\nuse (\n\t%q\n\t./blocks\n)\n", root))
	writeFile(t, filepath.Join(mod, "go.mod"), "module doccheck.blocks\n\ngo 1.25\n")
	for i, b := range blocks {
		src, err := goFile(b, filepath.ToSlash(filepath.Join(root, b.file)), fmt.Sprintf("block%d", i))
		if err != nil {
			t.Errorf("%v: %v", b, err)
			continue
		}
		writeFile(t, filepath.Join(mod, fmt.Sprintf("b%02d", i), "block.go"), src)
	}
	if t.Failed() {
		return
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go test puts the go command on PATH, but it is not there: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "vet", "./...")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(work, "go.work"), "GOFLAGS=", "GOPROXY=off",
		"GOTOOLCHAIN=local", "GO111MODULE=on")
	out, err := cmd.CombinedOutput()
	out = bytes.ReplaceAll(out, []byte(filepath.ToSlash(root)+"/"), nil) // positions relative to the repository
	if err != nil {
		t.Fatalf("go vet of the %d Go blocks of the documentation failed (%v); positions are in the documents:\n%s",
			len(blocks), err, out)
	}
	t.Logf("%d Go blocks compile and pass go vet", len(blocks))
}

// markdownGoBlocks returns the ```go blocks of a Markdown file.
func markdownGoBlocks(root, path string) ([]codeBlock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rel, _ := filepath.Rel(root, path)
	var blocks []codeBlock
	var cur *codeBlock
	var body []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fence := strings.TrimLeft(line, " ")
		indent := len(line) - len(fence)
		switch {
		case cur == nil && indent <= 3 && strings.HasPrefix(fence, "```"):
			info := strings.TrimSpace(strings.TrimLeft(fence, "`"))
			cur = &codeBlock{file: filepath.ToSlash(rel), line: n + 1}
			if info != "go" {
				cur.file = "" // not Go: skipped
			}
			body = nil
		case cur != nil && strings.TrimSpace(line) == "```":
			if cur.file != "" {
				cur.code = strings.Join(body, "\n") + "\n"
				blocks = append(blocks, *cur)
			}
			cur = nil
		case cur != nil:
			body = append(body, line)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s: a code block opened before line %d is never closed", rel, cur.line)
	}
	return blocks, sc.Err()
}

// quickStartBlocks returns the code blocks under a "Quick start" heading
// of the package doc in dir.
func quickStartBlocks(root, dir string) ([]codeBlock, error) {
	bp, err := build.Default.ImportDir(filepath.Join(root, dir), 0)
	if err != nil {
		return nil, err
	}
	var blocks []codeBlock
	for _, name := range bp.GoFiles {
		path := filepath.Join(root, dir, name)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			return nil, err
		}
		if f.Doc == nil {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(root, path)
		var p comment.Parser
		heading := ""
		for _, blk := range p.Parse(f.Doc.Text()).Content {
			switch x := blk.(type) {
			case *comment.Heading:
				heading = plainText(x.Text)
			case *comment.Code:
				if strings.HasPrefix(heading, "Quick start") {
					blocks = append(blocks, codeBlock{file: filepath.ToSlash(rel), line: lineOf(src, x.Text), code: x.Text})
				}
			}
		}
	}
	return blocks, nil
}

func plainText(texts []comment.Text) string {
	var b strings.Builder
	for _, t := range texts {
		if p, ok := t.(comment.Plain); ok {
			b.WriteString(string(p))
		}
	}
	return b.String()
}

// lineOf finds the line of a doc comment's code block in its file: the
// first line that is "//", a tab and the block's first line.
func lineOf(src []byte, code string) int {
	first, _, _ := strings.Cut(code, "\n")
	for i, l := range strings.Split(string(src), "\n") {
		if l == "//\t"+first {
			return i + 1
		}
	}
	return 1
}

// goFile turns a block into a Go file, with a line directive so that
// compiler and vet positions point into the document at path.
func goFile(b codeBlock, path, pkg string) (string, error) {
	first := firstCodeLine(b.code)
	directive := fmt.Sprintf("//line %s:%d\n", path, b.line)
	if strings.HasPrefix(first, "package ") {
		formatted, err := format.Source([]byte(b.code))
		if err != nil {
			return "", fmt.Errorf("a whole file that does not parse: %w", err)
		}
		if string(formatted) != b.code {
			return "", fmt.Errorf("a whole file that gofmt would change; write it as gofmt prints it (tabs)")
		}
		return directive + b.code, nil
	}
	var used []string
	for _, name := range selectorRoots(b.code) {
		if path, ok := knownImports[name]; ok {
			used = append(used, path)
		}
	}
	var src strings.Builder
	fmt.Fprintf(&src, "package %s\n\n", pkg)
	switch {
	case strings.HasPrefix(first, "import"):
		src.WriteString(directive + b.code)
		return src.String(), nil
	case isDecl(first):
		writeImports(&src, used)
		src.WriteString(directive + b.code)
	default:
		writeImports(&src, append(used, "context"))
		src.WriteString("func _(ctx context.Context) {\n" + directive + b.code + "}\n")
	}
	return src.String(), nil
}

func isDecl(line string) bool {
	for _, kw := range []string{"func ", "func(", "type ", "var ", "var(", "const ", "const("} {
		if strings.HasPrefix(line, kw) {
			return true
		}
	}
	return false
}

func writeImports(b *strings.Builder, paths []string) {
	slices.Sort(paths)
	paths = slices.Compact(paths)
	if len(paths) == 0 {
		return
	}
	b.WriteString("import (\n")
	for _, p := range paths {
		fmt.Fprintf(b, "\t%q\n", p)
	}
	b.WriteString(")\n\n")
}

// firstCodeLine is the block's first line that is neither blank nor a
// comment.
func firstCodeLine(code string) string {
	for l := range strings.SplitSeq(code, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "//") {
			return l
		}
	}
	return ""
}

// selectorRoots returns the identifiers the code uses as the left side of
// a selector (x in x.Y) where x is not itself selected, in order: the
// package names a fragment may need imported.
func selectorRoots(code string) []string {
	fset := token.NewFileSet()
	var s scanner.Scanner
	s.Init(fset.AddFile("", -1, len(code)), []byte(code), nil, 0)
	var names []string
	prev := token.ILLEGAL
	var ident string
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.PERIOD && ident != "" {
			names = append(names, ident)
		}
		ident = ""
		if tok == token.IDENT && prev != token.PERIOD {
			ident = lit
		}
		prev = tok
	}
	return names
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
