package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// SARIF 2.1.0 types: only what the scanner writes.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name,omitempty"`
	ShortDescription     sarifText         `json:"shortDescription"`
	Help                 sarifText         `json:"help"`
	DefaultConfiguration sarifRuleConfig   `json:"defaultConfiguration"`
	Properties           map[string]string `json:"properties,omitempty"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifInvocation struct {
	ExecutionSuccessful bool   `json:"executionSuccessful"`
	StartTimeUTC        string `json:"startTimeUtc"`
	EndTimeUTC          string `json:"endTimeUtc"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

// sarifLevel maps severities: high → error, medium → warning, low/info → note.
func sarifLevel(s scan.Severity) string {
	switch s {
	case scan.SeverityHigh:
		return "error"
	case scan.SeverityMedium:
		return "warning"
	}
	return "note"
}

// SARIF writes a SARIF 2.1.0 log with one run. partialFingerprints carries the
// scanner's stable fingerprint, so code-scanning services track findings
// across runs.
func SARIF(w io.Writer, r *scan.Report) error {
	driver := sarifDriver{Name: "gatehouse-scan", Version: r.ToolVersion, InformationURI: "https://github.com/gatehouse-dev/gatehouse/blob/main/docs/scanner.md", Rules: []sarifRule{}}
	index := map[string]int{}
	for _, rule := range r.Rules {
		if _, dup := index[rule.ID]; dup {
			continue
		}
		index[rule.ID] = len(driver.Rules)
		driver.Rules = append(driver.Rules, sarifRule{
			ID: rule.ID, Name: rule.Title, ShortDescription: sarifText{rule.Title}, Help: sarifText{rule.Fix},
			DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(rule.Severity)},
			Properties:           map[string]string{"severity": rule.Severity.String()},
		})
	}
	results := []sarifResult{}
	for _, f := range r.Findings {
		i, ok := index[f.ID]
		if !ok {
			i = len(driver.Rules)
			index[f.ID] = i
			driver.Rules = append(driver.Rules, sarifRule{ID: f.ID, Name: f.Title, ShortDescription: sarifText{f.Title}, Help: sarifText{f.Fix},
				DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(f.Severity)}})
		}
		msg := f.Title
		if f.Evidence.Details != "" {
			msg += ": " + f.Evidence.Details
		}
		results = append(results, sarifResult{
			RuleID: f.ID, RuleIndex: i, Level: sarifLevel(f.Severity), Message: sarifText{msg},
			Locations:           []sarifLocation{{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: f.URL}}}},
			PartialFingerprints: map[string]string{"gatehouseFingerprint/v1": f.Fingerprint},
			Properties: map[string]any{
				"severity": f.Severity.String(), "method": f.Method, "path": f.Path, "param": f.Param,
				"request": f.Evidence.Request, "response": f.Evidence.Response, "fix": f.Fix,
			},
		})
	}
	incomplete := false
	for _, c := range r.Checks {
		incomplete = incomplete || c.Error != ""
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:        sarifTool{Driver: driver},
			Invocations: []sarifInvocation{{ExecutionSuccessful: !incomplete, StartTimeUTC: r.Started.UTC().Format("2006-01-02T15:04:05Z"), EndTimeUTC: r.Finished.UTC().Format("2006-01-02T15:04:05Z")}},
			Results:     results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(log); err != nil {
		return fmt.Errorf("write sarif report: %w", err)
	}
	return nil
}
