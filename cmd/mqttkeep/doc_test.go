package main

import (
	"flag"
	"go/parser"
	gotoken "go/token"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The command's guide (doc.go, what "go doc" shows) names every flag of
// sub and pub, in one of its spellings, and those ping, check and demo
// add: a flag added without a word in the guide fails here.
func TestDocNamesEveryFlag(t *testing.T) {
	f, err := parser.ParseFile(gotoken.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	require.NoError(t, err)
	require.NotNil(t, f.Doc)
	doc := f.Doc.Text()
	mentions := func(name string) bool {
		dash := "-"
		if len(name) > 1 {
			dash = "--"
		}
		return regexp.MustCompile(`(^|[\s,(])` + regexp.QuoteMeta(dash+name) + `([\s,=):;.]|$)`).MatchString(doc)
	}
	for _, cmd := range []string{"sub", "pub"} {
		fs := newFlagSet(cmd)
		var cf connFlags
		cf.register(fs, cmd)
		if cmd == "sub" {
			var sf subFlags
			sf.register(fs)
		} else {
			var pf pubFlags
			pf.register(fs)
		}
		// Names of one value (-t and --topic) are one flag.
		spellings := map[flag.Value][]string{}
		fs.VisitAll(func(f *flag.Flag) { spellings[f.Value] = append(spellings[f.Value], f.Name) })
		for _, names := range spellings {
			found := false
			for _, n := range names {
				found = found || mentions(n)
			}
			assert.True(t, found, "the guide does not name %s's flag %v", cmd, names)
		}
	}
	for cmd, names := range map[string][]string{
		"ping":  {"c", "i", "W", "w", "q", "id", "disable-clean-session"},
		"check": {"json", "pings", "timeout"},
		"demo":  {"duration", "keepalive", "interval", "json", "svg"},
	} {
		for _, n := range names {
			assert.True(t, mentions(n), "the guide does not name %s's flag %s", cmd, n)
		}
	}
}
