package config

import (
	"sort"
	"strconv"
	"strings"
)

// FieldError is one problem with one field of the pool.
type FieldError struct {
	// Path is the JSON path of the field, for example
	// "haproxy.frontends[0].protocol". It is empty for problems with the
	// document as a whole, such as a JSON syntax error.
	Path string
	// Value is the offending value as text, or empty when there is none (a
	// missing field, an unknown field).
	Value string
	// Msg says what is wrong, in lower case.
	Msg string
	// Err is the underlying cause, if any (a JSON syntax error, a regexp
	// compile error). Error does not print it; Msg already says it.
	Err error
}

// Error formats the problem as `path: "value" msg`.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Value != "" {
		b.WriteString(strconv.Quote(e.Value))
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *FieldError) Unwrap() error { return e.Err }

// Errors is every problem Parse found, in document order.
type Errors []*FieldError

// Error lists the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// errList collects problems while decoding and validating.
type errList struct {
	errs Errors
}

func (l *errList) add(path, value, msg string) *FieldError {
	e := &FieldError{Path: path, Value: value, Msg: msg}
	l.errs = append(l.errs, e)
	return e
}

func (l *errList) addErr(path, value, msg string, cause error) {
	l.add(path, value, msg).Err = cause
}

// within reports whether path is prefix itself or a field or element under
// it.
func within(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	if len(path) == len(prefix) || prefix == "" {
		return true
	}
	c := path[len(prefix)]
	return c == '.' || c == '['
}

// span is where a value is in the input, in bytes.
type span struct{ start, end int64 }

// sortByDocument orders errs by where their path occurs in the input. A path
// that is absent from the input (a missing field) sorts at the end of its
// nearest present ancestor, the way a compiler reports a missing element at
// the closing brace. The sort is stable, so problems found at the same place
// keep the order in which they were found.
func sortByDocument(errs Errors, offsets map[string]span) {
	pos := func(path string) int64 {
		if sp, ok := offsets[path]; ok {
			return sp.start
		}
		for path != "" {
			path = parentPath(path)
			if sp, ok := offsets[path]; ok {
				return sp.end
			}
		}
		return 0
	}
	keys := make([]int64, len(errs))
	idx := make([]int, len(errs))
	for i, e := range errs {
		keys[i] = pos(e.Path)
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	sorted := make(Errors, len(errs))
	for i, j := range idx {
		sorted[i] = errs[j]
	}
	copy(errs, sorted)
}

// parentPath strips the last field or index from a JSON path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func field(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
