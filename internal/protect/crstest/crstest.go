package crstest

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is one go-ftw test file.
type File struct {
	RuleID int    `yaml:"rule_id"`
	Tests  []Test `yaml:"tests"`
}

// Test is one go-ftw test.
type Test struct {
	ID     int     `yaml:"test_id"`
	Desc   string  `yaml:"desc"`
	Stages []Stage `yaml:"stages"`
}

// Stage is one request and its expected outcome.
type Stage struct {
	Input  Input  `yaml:"input"`
	Output Output `yaml:"output"`
}

// Input is what go-ftw sends.
type Input struct {
	Method              *string           `yaml:"method"`
	URI                 *string           `yaml:"uri"`
	Version             *string           `yaml:"version"`
	Headers             map[string]string `yaml:"headers"`
	Data                *string           `yaml:"data"`
	EncodedRequest      string            `yaml:"encoded_request"`
	RawRequest          string            `yaml:"raw_request"`
	AutocompleteHeaders *bool             `yaml:"autocomplete_headers"`
	StopMagic           *bool             `yaml:"stop_magic"`
}

// Output is what go-ftw expects.
type Output struct {
	Status  any `yaml:"status"`
	Log     Log `yaml:"log"`
	NoLog   any `yaml:"no_log_contains"`
	LogText any `yaml:"log_contains"`
}

// Log holds the rule-id expectations.
type Log struct {
	ExpectIDs   []int `yaml:"expect_ids"`
	NoExpectIDs []int `yaml:"no_expect_ids"`
}

// Case is one runnable test.
type Case struct {
	Name        string // "942100-2"
	File        string
	Request     *http.Request
	Body        []byte
	ExpectIDs   []int
	NoExpectIDs []int
}

// Load reads every request-side test file under root of fsys and returns the
// runnable cases and the number of tests that were not runnable.
func Load(fsys fs.FS) (cases []Case, total, notRunnable int, err error) {
	err = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return nil
		}
		if !strings.HasPrefix(path, "REQUEST-") {
			// Response-side tests need an upstream answer; FilterResponse, not
			// the WAF, judges responses here.
			var f File
			if b, err := fs.ReadFile(fsys, path); err == nil && yaml.Unmarshal(b, &f) == nil {
				total += len(f.Tests)
				notRunnable += len(f.Tests)
			}
			return nil
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		var f File
		if err := yaml.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("crstest: %s: %w", path, err)
		}
		for _, t := range f.Tests {
			total++
			c, ok := toCase(path, f.RuleID, t)
			if !ok {
				notRunnable++
				continue
			}
			cases = append(cases, c)
		}
		return nil
	})
	return cases, total, notRunnable, err
}

func toCase(path string, rule int, t Test) (Case, bool) {
	if len(t.Stages) != 1 {
		return Case{}, false
	}
	st := t.Stages[0]
	in := st.Input
	if in.EncodedRequest != "" || in.RawRequest != "" {
		return Case{}, false
	}
	if len(st.Output.Log.ExpectIDs) == 0 && len(st.Output.Log.NoExpectIDs) == 0 {
		return Case{}, false
	}
	method := "GET"
	if in.Method != nil {
		method = *in.Method
	}
	if method == "" || strings.ContainsAny(method, " \t\r\n") {
		return Case{}, false
	}
	uri := "/"
	if in.URI != nil {
		uri = *in.URI
	}
	proto := "HTTP/1.1"
	if in.Version != nil && *in.Version != "" {
		proto = *in.Version
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return Case{}, false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		// Not a URI Go's server would accept: a raw-socket test in disguise.
		return Case{}, false
	}
	r := &http.Request{
		Method: method, URL: u, RequestURI: uri, Proto: proto, ProtoMajor: major, ProtoMinor: minor,
		Header: http.Header{}, RemoteAddr: "192.0.2.10:40000",
	}
	for k, v := range in.Headers {
		if strings.EqualFold(k, "Host") {
			r.Host = v
			continue
		}
		r.Header.Add(k, v)
	}
	var body []byte
	if in.Data != nil {
		body = []byte(*in.Data)
	}
	auto := in.AutocompleteHeaders == nil || *in.AutocompleteHeaders
	if auto && len(body) > 0 && r.Header.Get("Content-Length") == "" {
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	if auto && r.Header.Get("Connection") == "" {
		r.Header.Set("Connection", "close")
	}
	r.ContentLength = int64(len(body))
	return Case{
		Name:        fmt.Sprintf("%d-%d", rule, t.ID),
		File:        path,
		Request:     r,
		Body:        body,
		ExpectIDs:   st.Output.Log.ExpectIDs,
		NoExpectIDs: st.Output.Log.NoExpectIDs,
	}, true
}

// Clone returns a copy of the case's request that a WAF may read.
func (c Case) Clone() (*http.Request, []byte) {
	r := c.Request.Clone(c.Request.Context())
	r.RequestURI = c.Request.RequestURI
	return r, bytes.Clone(c.Body)
}

// Passes reports whether matched (every rule that matched) meets the test's
// expectations.
func (c Case) Passes(matched []int) bool {
	for _, id := range c.ExpectIDs {
		if !slices.Contains(matched, id) {
			return false
		}
	}
	for _, id := range c.NoExpectIDs {
		if slices.Contains(matched, id) {
			return false
		}
	}
	return true
}

var (
	idRe = regexp.MustCompile(`\bid:(\d+)`)
	plRe = regexp.MustCompile(`paranoia-level/(\d)`)
)

// RuleParanoia maps CRS rule ids to their paranoia level, read from the rule
// files' tags. Rules without a paranoia tag are absent.
func RuleParanoia(fsys fs.FS) (map[int]int, error) {
	out := map[int]int{}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".conf") {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		// Each rule's actions hold its id and, further on, its paranoia tag.
		ids := idRe.FindAllSubmatchIndex(b, -1)
		for i, m := range ids {
			end := len(b)
			if i+1 < len(ids) {
				end = ids[i+1][0]
			}
			id, _ := strconv.Atoi(string(b[m[2]:m[3]]))
			if pl := plRe.FindSubmatch(b[m[1]:end]); pl != nil {
				out[id], _ = strconv.Atoi(string(pl[1]))
			}
		}
		return nil
	})
	return out, err
}
