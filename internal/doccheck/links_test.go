package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// markdownLink matches the target of an inline Markdown link or image.
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every relative link in README.md, CHANGELOG.md and docs/*.md names a
// file or directory of the repository, so that moving a page or a file
// cannot leave a dead link behind.
func TestRelativeLinksResolve(t *testing.T) {
	root := repoRoot(t)
	pages := []string{filepath.Join(root, "README.md"), filepath.Join(root, "CHANGELOG.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, page := range append(pages, more...) {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, page)
		for n, line := range strings.Split(string(data), "\n") {
			for _, m := range markdownLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				if _, err := os.Stat(filepath.Join(filepath.Dir(page), filepath.FromSlash(target))); err != nil {
					t.Errorf("%s:%d: the link to %s leads nowhere: %v", rel, n+1, m[1], err)
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Error("no relative link found: the pattern no longer matches the pages")
	}
}
