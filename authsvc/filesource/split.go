package filesource

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// document is one document of a file, converted to JSON.
type document struct {
	loc  Location
	json []byte
}

// split cuts a file into documents and converts each to JSON. A document that
// does not parse becomes a Problem; the documents around it are still returned.
func (l *loader) split(file string, content []byte) []document {
	// bufio.Reader.ReadLine, under the YAMLReader, drops the \r of CRLF line
	// ends; doing the same here keeps the byte offsets of both in step.
	content = bytes.ReplaceAll(content, []byte("\r\n"), []byte("\n"))
	content = bytes.TrimPrefix(content, []byte("\uFEFF"))

	if docs, ok := l.splitJSON(file, content); ok {
		return docs
	}
	return l.splitYAML(file, content)
}

// splitYAML splits YAML with apimachinery's YAMLReader, which is how kubectl
// reads `-f` files, so a file splits here exactly as `kubectl apply` splits it.
//
// YAMLReader returns the text of each document but not where it starts; that is
// found again in content, to give documents and syntax errors their lines.
func (l *loader) splitYAML(file string, content []byte) []document {
	var docs []document
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(content)))
	pos, line := 0, 1 // byte offset and line number of the unread rest of content
	for n := 1; ; n++ {
		chunk, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			// The only error YAMLReader returns on an in-memory reader: a "---"
			// line followed by something other than a comment. It drops the
			// document before the bad line and goes on after it.
			badPos, badLine := findBadSeparator(content, pos, line)
			l.problem(Location{File: file, Document: n, Line: badLine}, "", "",
				fmt.Sprintf("invalid document separator at line %d: only a comment may follow \"---\" on its line; "+
					"this document was not read", badLine))
			pos, line = nextLine(content, badPos), badLine+1
			continue
		}

		start, ok := locate(content, pos, chunk)
		if !ok { // cannot happen with YAMLReader as it is; stay useful if it changes
			loc := Location{File: file, Document: n}
			docs = append(docs, l.convertYAML(loc, chunk, 0)...)
			continue
		}
		startLine := line + bytes.Count(content[pos:start], []byte("\n"))
		loc := Location{File: file, Document: n, Line: firstContentLine(chunk, startLine)}
		docs = append(docs, l.convertYAML(loc, chunk, startLine)...)
		pos = min(start+len(chunk), len(content))
		line = startLine + bytes.Count(chunk, []byte("\n"))
	}
}

// convertYAML converts one YAML document to JSON. startLine is the file line of
// the chunk's first line (0 if unknown), used to make error lines file lines.
func (l *loader) convertYAML(loc Location, chunk []byte, startLine int) []document {
	// Strict: a key set twice in one mapping is an error, not "last one wins".
	j, err := yaml.YAMLToJSONStrict(chunk)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
		msg = strings.TrimPrefix(msg, "yaml: ")
		if startLine > 0 {
			msg = rebaseLines(msg, startLine-1)
		}
		l.problem(loc, "", "", "invalid YAML: "+msg)
		return nil
	}
	return []document{{loc: loc, json: j}}
}

var lineRef = regexp.MustCompile(`\bline (\d+)`)

// rebaseLines adds offset to every "line N" in a YAML error message, turning
// lines of a document into lines of its file.
func rebaseLines(msg string, offset int) string {
	return lineRef.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "line "))
		if err != nil {
			return m
		}
		return "line " + strconv.Itoa(n+offset)
	})
}

// locate finds where a chunk returned by YAMLReader starts in content: after
// the separator lines YAMLReader skipped from pos on.
func locate(content []byte, pos int, chunk []byte) (int, bool) {
	for pos < len(content) && isSeparatorLine(content[pos:]) {
		pos = nextLine(content, pos)
	}
	rest := content[pos:]
	// YAMLReader ends every line with \n, also the last one of a file without
	// it. (No copy of rest: with 10,000 documents in one file that copied
	// 66 GB at startup.)
	if bytes.HasPrefix(rest, chunk) || (len(chunk) == len(rest)+1 && chunk[len(rest)] == '\n' && bytes.Equal(chunk[:len(rest)], rest)) {
		return pos, true
	}
	return 0, false
}

// findBadSeparator returns the offset and line of the first line at or after
// pos that starts with "---" followed by something other than a comment.
func findBadSeparator(content []byte, pos, line int) (int, int) {
	for pos < len(content) {
		if bytes.HasPrefix(content[pos:], []byte("---")) && !isSeparatorLine(content[pos:]) {
			return pos, line
		}
		pos = nextLine(content, pos)
		line++
	}
	return len(content), line
}

// isSeparatorLine reports whether the line at the start of b is a document
// separator as YAMLReader accepts it: "---", then only spaces or a comment.
func isSeparatorLine(b []byte) bool {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	rest, ok := bytes.CutPrefix(l, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// nextLine returns the offset of the line after the one at pos.
func nextLine(content []byte, pos int) int {
	if i := bytes.IndexByte(content[pos:], '\n'); i >= 0 {
		return pos + i + 1
	}
	return len(content)
}

// firstContentLine returns the file line of the first line of chunk that is
// neither blank nor a comment, or startLine if there is none or it is unknown.
func firstContentLine(chunk []byte, startLine int) int {
	if startLine == 0 {
		return 0
	}
	for i, l := range bytes.Split(chunk, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return startLine + i
		}
	}
	return startLine
}

// splitJSON reads content as a stream of JSON values ({...}{...}), as kubectl
// does when a file starts with "{". It returns ok=false, to read the file as
// YAML instead, when the first value is not JSON: "{a: 1}" is YAML flow style.
func (l *loader) splitJSON(file string, content []byte) ([]document, bool) {
	if !utilyaml.IsJSONBuffer(content) {
		return nil, false
	}
	var docs []document
	dec := json.NewDecoder(bytes.NewReader(content))
	for n := 1; ; n++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, true
		}
		if err != nil {
			if n == 1 {
				return nil, false
			}
			loc := Location{File: file, Document: n}
			msg := err.Error()
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line := 1 + bytes.Count(content[:min(int(se.Offset), len(content))], []byte("\n"))
				msg = fmt.Sprintf("line %d: %v", line, err)
			}
			l.problem(loc, "", "", "invalid JSON: "+msg+"; the rest of the file was not read")
			return docs, true
		}
		start := int(dec.InputOffset()) - len(raw)
		line := 1 + bytes.Count(content[:start], []byte("\n"))
		docs = append(docs, document{loc: Location{File: file, Document: n, Line: line}, json: raw})
	}
}
