package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFilterFile is the largest suppression or baseline file accepted.
const MaxFilterFile = 16 << 20

// Suppression removes matching findings from every report. Exactly one of ID
// (a rule id such as GH-HDR-001, removing all its findings) or Fingerprint
// (one finding) is set, and Reason is required: an unexplained suppression is
// how real problems get hidden.
type Suppression struct {
	ID          string `yaml:"id" json:"id"`
	Fingerprint string `yaml:"fingerprint" json:"fingerprint"`
	Reason      string `yaml:"reason" json:"reason"`
}

// ParseSuppressions reads a YAML or JSON list of suppressions, strictly
// (unknown keys are errors) and reports every bad entry at once.
func ParseSuppressions(b []byte) ([]Suppression, error) {
	if len(b) > MaxFilterFile {
		return nil, fmt.Errorf("parse suppressions: file over %d bytes: %w", MaxFilterFile, ErrBadSuppression)
	}
	var list []Suppression
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil {
		if strings.TrimSpace(string(b)) == "" {
			return nil, nil
		}
		return nil, fmt.Errorf("parse suppressions: %v: %w", err, ErrBadSuppression)
	}
	var problems []string
	for i, s := range list {
		s.ID, s.Fingerprint, s.Reason = strings.TrimSpace(s.ID), strings.TrimSpace(s.Fingerprint), strings.TrimSpace(s.Reason)
		list[i] = s
		switch {
		case s.ID == "" && s.Fingerprint == "":
			problems = append(problems, fmt.Sprintf("entry %d: needs id or fingerprint", i+1))
		case s.ID != "" && s.Fingerprint != "":
			problems = append(problems, fmt.Sprintf("entry %d: give id or fingerprint, not both", i+1))
		}
		if s.Reason == "" {
			problems = append(problems, fmt.Sprintf("entry %d (%s%s): a reason is required", i+1, s.ID, s.Fingerprint))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("parse suppressions: %s: %w", strings.Join(problems, "; "), ErrBadSuppression)
	}
	return list, nil
}

// Suppress removes findings matched by sup and counts them in r.Suppressed.
func (r *Report) Suppress(sup []Suppression) {
	if len(sup) == 0 {
		return
	}
	ids, fps := map[string]bool{}, map[string]bool{}
	for _, s := range sup {
		if s.ID != "" {
			ids[strings.ToUpper(s.ID)] = true
		}
		if s.Fingerprint != "" {
			fps[strings.ToLower(s.Fingerprint)] = true
		}
	}
	kept := r.Findings[:0]
	for _, f := range r.Findings {
		if ids[strings.ToUpper(f.ID)] || fps[strings.ToLower(f.Fingerprint)] {
			r.Suppressed++
			continue
		}
		kept = append(kept, f)
	}
	r.Findings = kept
}

// ReadBaseline reads the fingerprints of a previous JSON report.
func ReadBaseline(b []byte) (map[string]bool, error) {
	if len(b) > MaxFilterFile {
		return nil, fmt.Errorf("read baseline: file over %d bytes: %w", MaxFilterFile, ErrBadBaseline)
	}
	var prev struct {
		Version  int `json:"version"`
		Findings []struct {
			Fingerprint string `json:"fingerprint"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(b, &prev); err != nil {
		return nil, fmt.Errorf("read baseline: %v: %w", err, ErrBadBaseline)
	}
	if prev.Version != ReportVersion || prev.Findings == nil {
		return nil, fmt.Errorf("read baseline: not a version %d JSON scan report: %w", ReportVersion, ErrBadBaseline)
	}
	out := make(map[string]bool, len(prev.Findings))
	for _, f := range prev.Findings {
		out[strings.ToLower(f.Fingerprint)] = true
	}
	return out, nil
}

// DropKnown removes findings whose fingerprint is in known (a baseline) and
// counts them in r.Known.
func (r *Report) DropKnown(known map[string]bool) {
	if len(known) == 0 {
		return
	}
	kept := r.Findings[:0]
	for _, f := range r.Findings {
		if known[strings.ToLower(f.Fingerprint)] {
			r.Known++
			continue
		}
		kept = append(kept, f)
	}
	r.Findings = kept
}
