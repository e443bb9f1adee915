package doccheck

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the API snapshots in api/ from the live code")

// publicPackages are the packages whose exported API is recorded in api/:
// directory relative to the repository root, and snapshot file.
var publicPackages = []struct{ dir, snapshot string }{
	{".", "mqttkeep.txt"},
	{"filestore", "filestore.txt"},
	{"mqttkeeptest", "mqttkeeptest.txt"},
}

// The snapshots list signatures, not documentation: a doc comment can be
// edited without touching them, and every line that changes is a change a
// user's code can see.
func TestAPISnapshot(t *testing.T) {
	root := repoRoot(t)
	for _, p := range publicPackages {
		t.Run(p.snapshot, func(t *testing.T) {
			live, err := exportedAPI(filepath.Join(root, p.dir))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(root, "api", p.snapshot)
			if *update {
				if err := os.WriteFile(path, []byte(live), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s", path)
				return
			}
			recorded, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v\nRecord the API with: go test ./internal/doccheck -run TestAPISnapshot -update", err)
			}
			if string(recorded) != live {
				t.Errorf("the exported API of %s differs from api/%s:\n%s\n"+
					"If the change is intended, update the snapshot:\n"+
					"\tgo test ./internal/doccheck -run TestAPISnapshot -update\n"+
					"AND add a line saying what changed to CHANGELOG.md under \"Unreleased\".",
					strings.TrimSuffix(p.snapshot, ".txt"), p.snapshot, lineDiff(string(recorded), live))
			}
		})
	}
}

// repoRoot is the module root: this package lives in internal/doccheck.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at the repository root %s: %v", root, err)
	}
	return root
}

// exportedAPI lists the exported declarations of the package in dir (its
// non-test files for this platform), without comments or parameter names,
// in an order that does not depend on which file holds what.
func exportedAPI(dir string) (string, error) {
	bp, err := build.Default.ImportDir(dir, 0)
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	var consts, vars, funcs []string
	types := map[string]string{}
	methods := map[string][]string{}
	for _, name := range bp.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return "", err
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				recv := ""
				if d.Recv != nil {
					recv = receiverType(d.Recv.List[0].Type)
					if !ast.IsExported(strings.TrimPrefix(recv, "*")) {
						continue
					}
				}
				sig := "func "
				if recv != "" {
					sig += "(" + recv + ") "
				}
				sig += d.Name.Name + strings.TrimPrefix(node(fset, stripNames(d.Type)), "func")
				if recv != "" {
					base := strings.TrimPrefix(recv, "*")
					methods[base] = append(methods[base], sig)
				} else {
					funcs = append(funcs, sig)
				}
			case *ast.GenDecl:
				switch d.Tok {
				case token.CONST, token.VAR:
					if s := valueGroup(fset, d); s != "" {
						if d.Tok == token.CONST {
							consts = append(consts, s)
						} else {
							vars = append(vars, s)
						}
					}
				case token.TYPE:
					for _, spec := range d.Specs {
						ts := spec.(*ast.TypeSpec)
						if ts.Name.IsExported() {
							types[ts.Name.Name] = typeDecl(fset, ts)
						}
					}
				}
			}
		}
	}
	slices.Sort(consts)
	slices.Sort(vars)
	slices.Sort(funcs)
	var b strings.Builder
	fmt.Fprintf(&b, "// The exported API of package %s (import %q), as TestAPISnapshot\n", bp.Name, importPath(bp.Name))
	b.WriteString("// in internal/doccheck reads it: signatures without comments or parameter names.\n")
	b.WriteString("// Regenerate: go test ./internal/doccheck -run TestAPISnapshot -update\n")
	for _, group := range [][]string{consts, vars} {
		for _, s := range group {
			b.WriteString("\n" + s + "\n")
		}
	}
	if len(funcs) > 0 {
		b.WriteString("\n" + strings.Join(funcs, "\n") + "\n")
	}
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		b.WriteString("\n" + types[n] + "\n")
		ms := methods[n]
		slices.Sort(ms)
		for _, m := range ms {
			b.WriteString(m + "\n")
		}
	}
	return b.String(), nil
}

func importPath(name string) string {
	if name == "mqttkeep" {
		return "github.com/mqttkeep/mqttkeep"
	}
	return "github.com/mqttkeep/mqttkeep/" + name
}

// receiverType is "T" or "*T" for a receiver of type T (type parameters
// dropped).
func receiverType(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return "*" + receiverType(x.X)
	case *ast.IndexExpr:
		return receiverType(x.X)
	case *ast.IndexListExpr:
		return receiverType(x.X)
	case *ast.Ident:
		return x.Name
	}
	return fmt.Sprintf("%T", e)
}

// valueGroup prints the exported specs of a const or var declaration as
// one group, in source order, so that an iota sequence keeps its meaning;
// "" when none is exported.
func valueGroup(fset *token.FileSet, d *ast.GenDecl) string {
	var specs []string
	for _, spec := range d.Specs {
		vs := spec.(*ast.ValueSpec)
		exported := slices.ContainsFunc(vs.Names, func(n *ast.Ident) bool { return n.IsExported() })
		if !exported {
			continue
		}
		c := *vs
		c.Doc, c.Comment = nil, nil
		specs = append(specs, node(fset, &c))
	}
	switch {
	case len(specs) == 0:
		return ""
	case len(specs) == 1 && !d.Lparen.IsValid():
		return d.Tok.String() + " " + specs[0]
	}
	return d.Tok.String() + " (\n\t" + strings.Join(specs, "\n\t") + "\n)"
}

// typeDecl prints a type declaration with its exported fields and methods
// only, and a line saying so when there are unexported ones (which keep
// composite literals or implementations outside the package from
// compiling).
func typeDecl(fset *token.FileSet, ts *ast.TypeSpec) string {
	head := "type " + ts.Name.Name
	if ts.TypeParams != nil {
		generic := &ast.TypeSpec{Name: ts.Name, TypeParams: ts.TypeParams, Type: ast.NewIdent("T")}
		head = "type " + strings.TrimSuffix(node(fset, generic), " T")
	}
	if ts.Assign.IsValid() {
		head += " ="
	}
	var fields *ast.FieldList
	var kind string
	switch t := ts.Type.(type) {
	case *ast.StructType:
		fields, kind = t.Fields, "struct"
	case *ast.InterfaceType:
		fields, kind = t.Methods, "interface"
	default:
		return head + " " + node(fset, stripNames(ts.Type))
	}
	var lines []string
	hidden := false
	for _, f := range fields.List {
		if len(f.Names) == 0 { // embedded
			if ast.IsExported(strings.TrimPrefix(receiverType(f.Type), "*")) || kind == "interface" {
				lines = append(lines, node(fset, stripNames(f.Type)))
			} else {
				hidden = true
			}
			continue
		}
		for _, n := range f.Names {
			if !n.IsExported() {
				hidden = true
				continue
			}
			typ := node(fset, stripNames(f.Type))
			if kind == "interface" {
				lines = append(lines, n.Name+strings.TrimPrefix(typ, "func"))
			} else {
				lines = append(lines, n.Name+" "+typ)
			}
		}
	}
	if hidden {
		lines = append(lines, "// and unexported "+map[string]string{"struct": "fields", "interface": "methods"}[kind])
	}
	if len(lines) == 0 {
		return head + " " + kind + "{}"
	}
	return head + " " + kind + " {\n\t" + strings.Join(lines, "\n\t") + "\n}"
}

// stripNames returns a copy of the type expression whose function types
// carry no parameter or result names.
func stripNames(e ast.Expr) ast.Expr {
	switch t := e.(type) {
	case *ast.FuncType:
		return &ast.FuncType{Params: unnamed(t.Params), Results: unnamed(t.Results)}
	case *ast.StarExpr:
		return &ast.StarExpr{X: stripNames(t.X)}
	case *ast.ArrayType:
		return &ast.ArrayType{Len: t.Len, Elt: stripNames(t.Elt)}
	case *ast.MapType:
		return &ast.MapType{Key: stripNames(t.Key), Value: stripNames(t.Value)}
	case *ast.ChanType:
		return &ast.ChanType{Dir: t.Dir, Value: stripNames(t.Value)}
	case *ast.Ellipsis:
		return &ast.Ellipsis{Elt: stripNames(t.Elt)}
	}
	return e
}

func unnamed(fl *ast.FieldList) *ast.FieldList {
	if fl == nil {
		return nil
	}
	out := &ast.FieldList{}
	for _, f := range fl.List {
		n := max(len(f.Names), 1)
		for range n {
			out.List = append(out.List, &ast.Field{Type: stripNames(f.Type)})
		}
	}
	return out
}

// node prints an AST node on one line per statement, without comments.
func node(fset *token.FileSet, n any) string {
	var buf bytes.Buffer
	if err := printer.Fprint(&buf, fset, n); err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return buf.String()
}

// lineDiff lists the lines only in want (-) and only in got (+), in order.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	inW, inG := map[string]int{}, map[string]int{}
	for _, l := range w {
		inW[l]++
	}
	for _, l := range g {
		inG[l]++
	}
	var b strings.Builder
	for _, l := range w {
		if inG[l] == 0 {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if inW[l] == 0 {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(the same lines in another order or count)"
	}
	return b.String()
}
