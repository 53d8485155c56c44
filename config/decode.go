package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// The standard library's strict mode (DisallowUnknownFields) stops at the
// first unknown field and does not say where it is. Parse instead reads the
// document into a small tree that keeps key order and byte offsets, then
// walks that tree against the Go types, so that every problem is reported
// with its JSON path.

// jnode is one JSON value.
type jnode struct {
	kind  byte  // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	off   int64 // where the value starts
	end   int64 // where the value ends
	keys  []string
	vals  []*jnode // object members, in document order, parallel to keys
	elems []*jnode // array elements
	str   string
	num   json.Number
	b     bool
}

func (n *jnode) get(key string) *jnode {
	if n == nil || n.kind != 'o' {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// describe renders a value for an error message, shortened for containers.
func (n *jnode) describe() string {
	switch n.kind {
	case 'o':
		return "{...}"
	case 'a':
		return "[...]"
	case 's':
		return n.str
	case 'n':
		return n.num.String()
	case 'b':
		return strconv.FormatBool(n.b)
	}
	return "null"
}

func (n *jnode) kindName() string {
	switch n.kind {
	case 'o':
		return "an object"
	case 'a':
		return "an array"
	case 's':
		return "a string"
	case 'n':
		return "a number"
	case 'b':
		return "a boolean"
	}
	return "null"
}

// parseTree reads one JSON value and nothing else.
func parseTree(data []byte) (*jnode, *FieldError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := readValue(dec, 0)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			if terr == nil {
				err = fmt.Errorf("unexpected data after the top-level value")
			} else {
				err = terr
			}
		}
	}
	if err == nil {
		return root, nil
	}
	return nil, syntaxError(data, dec.InputOffset(), err)
}

func syntaxError(data []byte, off int64, err error) *FieldError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		off = int64(len(data))
		if len(bytes.TrimSpace(data)) == 0 {
			return &FieldError{Msg: "invalid JSON: empty document", Err: err}
		}
		err = io.ErrUnexpectedEOF
	}
	line, col := lineCol(data, off)
	what := "invalid JSON"
	msg := strings.TrimPrefix(err.Error(), "json: ")
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "unexpected end of input"
	case errors.Is(err, errDuplicateKey):
		what = "ambiguous JSON"
	}
	return &FieldError{
		Msg: fmt.Sprintf("%s at line %d, column %d (byte %d): %s", what, line, col, off, msg),
		Err: err,
	}
}

// lineCol converts a byte offset to a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data))))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

var errDuplicateKey = errors.New("duplicate key")

// maxDepth bounds nesting. A pool is about eight levels deep; the bound keeps
// hostile input from costing deep recursion.
const maxDepth = 64

// readValue reads the next value. Duplicate keys are rejected: encoding/json
// would silently keep the last one.
func readValue(dec *json.Decoder, depth int) (*jnode, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxDepth)
	}
	off := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &jnode{kind: 'o', off: off}
			seen := make(map[string]struct{})
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				if _, dup := seen[key]; dup {
					return nil, fmt.Errorf("%w %q", errDuplicateKey, key)
				}
				seen[key] = struct{}{}
				v, err := readValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, key)
				n.vals = append(n.vals, v)
			}
			_, err := dec.Token() // '}'
			n.end = dec.InputOffset()
			return n, err
		case '[':
			n := &jnode{kind: 'a', off: off}
			for dec.More() {
				v, err := readValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
			_, err := dec.Token() // ']'
			n.end = dec.InputOffset()
			return n, err
		}
		return nil, fmt.Errorf("unexpected %q", rune(t))
	case string:
		return &jnode{kind: 's', off: off, end: dec.InputOffset(), str: t}, nil
	case json.Number:
		return &jnode{kind: 'n', off: off, end: dec.InputOffset(), num: t}, nil
	case bool:
		return &jnode{kind: 'b', off: off, end: dec.InputOffset(), b: t}, nil
	case nil:
		return &jnode{kind: 'z', off: off, end: dec.InputOffset()}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// decoder fills Go values from a tree, collecting problems.
type decoder struct {
	errList
	offsets   map[string]span // JSON path -> where its value is, for ordering errors
	typeError []string        // paths whose value could not be decoded
}

func (d *decoder) bad(path string, n *jnode, want string) {
	d.add(path, n.describe(), fmt.Sprintf("is %s, want %s", n.kindName(), want))
	d.typeError = append(d.typeError, path)
}

// decode stores n into v. A JSON null leaves v at its zero value, which the
// defaults then treat as absent.
func (d *decoder) decode(path string, n *jnode, v reflect.Value) {
	d.offsets[path] = span{n.off, n.end}
	if n.kind == 'z' {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(path, n, e.Elem())
		v.Set(e)
	case reflect.Struct:
		d.decodeStruct(path, n, v)
	case reflect.Slice:
		if n.kind != 'a' {
			d.bad(path, n, "an array")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.elems), len(n.elems))
		for i, e := range n.elems {
			d.decode(index(path, i), e, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.kind != 'o' {
			d.bad(path, n, "an object")
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.keys))
		for i, k := range n.keys {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(path+"["+strconv.Quote(k)+"]", n.vals[i], e)
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.String:
		if n.kind != 's' {
			d.bad(path, n, "a string")
			return
		}
		v.SetString(n.str)
	case reflect.Bool:
		if n.kind != 'b' {
			d.bad(path, n, "a boolean (true or false)")
			return
		}
		v.SetBool(n.b)
	case reflect.Int32:
		if n.kind != 'n' {
			d.bad(path, n, "an integer")
			return
		}
		i, err := strconv.ParseInt(n.num.String(), 10, 32)
		if err != nil {
			msg := "is not an integer"
			if errors.Is(err, strconv.ErrRange) {
				msg = "is out of range for a 32-bit integer"
			}
			d.add(path, n.num.String(), msg)
			d.typeError = append(d.typeError, path)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.kind != 'n' {
			d.bad(path, n, "a number")
			return
		}
		f, err := strconv.ParseFloat(n.num.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			d.add(path, n.num.String(), "is out of range")
			d.typeError = append(d.typeError, path)
			return
		}
		v.SetFloat(f)
	default:
		panic("config: cannot decode into " + v.Type().String())
	}
}

func (d *decoder) decodeStruct(path string, n *jnode, v reflect.Value) {
	if n.kind != 'o' {
		d.bad(path, n, "an object")
		return
	}
	fields := jsonFields(v.Type())
	for i, key := range n.keys {
		p := field(path, key)
		fi, ok := fields[key]
		if !ok {
			d.offsets[p] = span{n.vals[i].off, n.vals[i].end}
			d.add(p, "", "unknown field"+unknownHint(key, fields))
			continue
		}
		d.decode(p, n.vals[i], v.Field(fi))
	}
}

// jsonFields maps the JSON names of t's exported fields to field indexes.
func jsonFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

// v1Fields are V1 names users carry over into V2 services by mistake (the
// Edge-LB 1.3 usage example does).
var v1Fields = map[string]string{
	"framework": "a V1 field: V2 services select tasks with marathon.serviceID or mesos.frameworkName",
	"task":      "a V1 field: V2 services select tasks with marathon.serviceID or mesos.taskName",
	"servers":   "a V1 field: V2 backends use services",
}

func unknownHint(key string, fields map[string]int) string {
	if h, ok := v1Fields[key]; ok {
		return " (" + key + " is " + h + ")"
	}
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf(" (did you mean %q? names are case-sensitive)", name)
		}
	}
	return ""
}

const v1Message = "Edge-LB V1 pool configurations are not supported (V1 is deprecated since Edge-LB 1.5): " +
	`convert the pool to V2 ("apiVersion": "V2", backends[].services instead of backends[].servers)`

// detectV1 recognises the V1 schema before the strict decode would bury the
// reason under a list of unknown fields.
func detectV1(root *jnode) *FieldError {
	if root.kind != 'o' {
		return &FieldError{Value: root.describe(), Msg: "is " + root.kindName() + ", want a pool object"}
	}
	if pools := root.get("pools"); pools != nil {
		if pools.kind == 'a' && len(pools.elems) > 0 {
			if v := pools.elems[0].get("apiVersion"); v != nil && v.kind == 's' && v.str == "V2" {
				return &FieldError{Path: "pools", Msg: `is a configuration of several pools; edgeproxy reads one pool object: pass one element of "pools"`}
			}
		}
		return &FieldError{Path: "pools", Msg: "is the V1 configuration wrapper. " + v1Message}
	}
	if v := root.get("apiVersion"); v != nil && v.kind == 's' && v.str == "V1" {
		return &FieldError{Path: "apiVersion", Value: "V1", Msg: v1Message}
	}
	if bes := root.get("haproxy").get("backends"); bes != nil && bes.kind == 'a' {
		for i, be := range bes.elems {
			if be.get("servers") != nil {
				return &FieldError{Path: field(index("haproxy.backends", i), "servers"), Msg: "is a V1 field. " + v1Message}
			}
		}
	}
	return nil
}
