package main

import (
	"strings"
	"testing"
)

func TestParseOptionsEnvironment(t *testing.T) {
	for _, args := range [][]string{
		{"-edgeproxy-env", "EDGEPROXY_BATCH_WRITES"},
		{"-baseline-env", "GOGC=100 off"},
	} {
		_, err := parseOptions(args)
		if err == nil || !strings.Contains(err.Error(), "is not K=V") {
			t.Errorf("parseOptions(%q) = %v, want a K=V error", args, err)
		}
	}
	_, err := parseOptions([]string{"-baseline", "/nonexistent/edgeproxy"})
	if err == nil || !strings.Contains(err.Error(), "-baseline") {
		t.Errorf("missing baseline binary: %v", err)
	}
}
