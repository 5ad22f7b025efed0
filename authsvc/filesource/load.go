package filesource

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/proxycheck"
)

// maxFileSize bounds how much of one file Load reads. Config files are small;
// the bound keeps a mistaken path (a log, a disk image) from eating memory.
const maxFileSize = 16 << 20

// Location says where an object came from, for error messages.
type Location struct {
	// File is the path as Load reached it (through symlinks, not resolved).
	File string
	// Document is the 1-based number of the YAML document in File; 0 when the
	// location is the file as a whole.
	Document int
	// Line is the first line of the document's content, 1-based; 0 if unknown.
	Line int
}

// String formats the location as "policies/shop.yaml:12 (document 2)", leaving
// out the parts that are not known. The file:line form is what editors and
// terminals turn into links.
func (l Location) String() string {
	s := l.File
	if l.Line > 0 {
		s = fmt.Sprintf("%s:%d", s, l.Line)
	}
	if l.Document > 0 {
		s = fmt.Sprintf("%s (document %d)", s, l.Document)
	}
	return s
}

// Ref names one object of a Bundle.
type Ref struct {
	// Kind is "AuthPolicy" or "Secret".
	Kind      string
	Namespace string
	Name      string
}

// String formats the reference as "AuthPolicy shop/shop".
func (r Ref) String() string {
	return fmt.Sprintf("%s %s/%s", r.Kind, r.Namespace, r.Name)
}

// Bundle is everything Load could read.
type Bundle struct {
	// Policies in file order: paths in the order given, folders sorted by name,
	// documents in the order they appear.
	Policies []*v1alpha1.AuthPolicy
	// Secrets in the same order.
	Secrets []*corev1.Secret
	// ProxyObjects are the proxy-side objects found beside them (Ingresses,
	// routes, middlewares), for `jwtgate check`.
	ProxyObjects []proxycheck.Object
	// Origin says where each object came from.
	Origin map[Ref]Location
	// Files lists every file Load found, whether or not it could be read.
	Files []string
}

// Problem is one thing wrong with the files, with its place and, when known,
// the object and the field path.
type Problem struct {
	Location Location
	// Object is "AuthPolicy shop/shop", or "" when the document has no usable name.
	Object string
	// Field is a path such as "spec.jwt.algorithms[0]", or "".
	Field string
	// Message says what is wrong and, where it can, how to fix it.
	Message string
}

// Error formats the problem as
// "policies/shop.yaml:12 (document 2): AuthPolicy shop/shop: spec.jwt.algoritms: ...",
// leaving out the empty parts.
func (p Problem) Error() string {
	parts := make([]string, 0, 4)
	for _, s := range []string{p.Location.String(), p.Object, p.Field, p.Message} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}

// Load reads the given files and folders and decodes the AuthPolicies and
// Secrets in them. It returns everything it could read together with every
// problem it met; it never stops at the first one. An object whose document has
// a problem is left out of the Bundle, so that a half-read object is never
// served.
//
// A path that is a folder is walked recursively, in name order. Inside folders,
// only *.yaml, *.yml and *.json files are read, and names starting with "." are
// skipped: that leaves out editor and VCS files and the "..data" and
// "..2026_11_23_..." entries of mounted ConfigMap and Secret volumes, whose
// visible files are symlinks into them. Symlinks are followed, and a file
// reached twice (a path given twice, or a file inside a folder that was also
// given) is read once. A path given explicitly is read whatever its name.
//
// A file may hold several YAML documents separated by "---" lines, or a JSON
// object stream. Supported documents are AuthPolicy (jwtgate.dev/v1alpha1),
// Secret (v1), and List (v1), AuthPolicyList and SecretList holding them.
// Empty documents are skipped.
func Load(paths []string) (*Bundle, []Problem) {
	l := &loader{bundle: &Bundle{Origin: map[Ref]Location{}}}
	w := &walker{}
	for _, p := range paths {
		// One path at a time, so that problems come in the order of the paths.
		nFiles, nProblems := len(w.files), len(w.problems)
		w.walk(p)
		l.problems = append(l.problems, w.problems[nProblems:]...)
		for _, f := range w.files[nFiles:] {
			l.file(f)
		}
	}
	l.bundle.Files = w.files
	return l.bundle, l.problems
}

// file reads one file and decodes every document in it.
func (l *loader) file(path string) {
	content, err := readFile(path)
	if err != nil {
		l.problem(Location{File: path}, "", "", err.Error())
		return
	}
	for _, d := range l.split(path, content) {
		l.document(d.loc, d.json, "", typeMeta{})
	}
}

// readFile reads up to maxFileSize bytes of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // G304: a config file the operator named (serve -f), or a file in a folder it named
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", pathErrorReason(err))
	}
	defer func() { _ = f.Close() }()
	content, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", pathErrorReason(err))
	}
	if len(content) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB: is this a config file?", maxFileSize>>20)
	}
	return content, nil
}

// pathErrorReason strips the operation and path from an *fs.PathError: the
// Problem already names the file.
func pathErrorReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// walker finds the files Load reads and the folders Watcher watches.
type walker struct {
	files    []string
	dirs     []string
	seen     []os.FileInfo // files found so far, to read each one once
	seenDirs []os.FileInfo // folders walked so far, against symlink loops
	problems []Problem
}

// walk adds a path given by the user: a file (read whatever its name) or a folder.
func (w *walker) walk(path string) {
	fi, err := os.Stat(path)
	if err != nil {
		w.problems = append(w.problems, Problem{
			Location: Location{File: path},
			Message:  "cannot read: " + pathErrorReason(err).Error(),
		})
		return
	}
	if fi.IsDir() {
		w.dir(path, fi)
		return
	}
	w.file(path, fi)
}

// dir walks a folder recursively, in name order, skipping hidden names.
func (w *walker) dir(path string, fi os.FileInfo) {
	for _, s := range w.seenDirs {
		if os.SameFile(s, fi) {
			return
		}
	}
	w.seenDirs = append(w.seenDirs, fi)
	w.dirs = append(w.dirs, path)

	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		w.problems = append(w.problems, Problem{
			Location: Location{File: path},
			Message:  "cannot read folder: " + pathErrorReason(err).Error(),
		})
		return
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(path, name)
		fi, err := os.Stat(full) // follows symlinks such as key -> ..data/key
		if err != nil {
			w.problems = append(w.problems, Problem{
				Location: Location{File: full},
				Message:  "cannot read: " + pathErrorReason(err).Error(),
			})
			continue
		}
		switch {
		case fi.IsDir():
			w.dir(full, fi)
		case fi.Mode().IsRegular() && isConfigFile(name):
			w.file(full, fi)
		}
	}
}

// file adds a file unless it was found before under another name.
func (w *walker) file(path string, fi os.FileInfo) {
	for _, s := range w.seen {
		if os.SameFile(s, fi) {
			return
		}
	}
	w.seen = append(w.seen, fi)
	w.files = append(w.files, path)
}

// isConfigFile reports whether a file inside a folder is one Load reads.
func isConfigFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}
