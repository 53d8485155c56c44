package marathontest

import (
	"errors"
	"os"
	"path/filepath"
)

// FixturesDir finds the real Marathon samples the fake is checked against:
// $EDGEPROXY_SHARED/fixtures/marathon, else the first shared/fixtures/marathon
// found walking up from the working directory (a clone of the repository
// has shared/ beside it).
func FixturesDir() (string, error) {
	if d := os.Getenv("EDGEPROXY_SHARED"); d != "" {
		return filepath.Join(d, "fixtures", "marathon"), nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, "shared", "fixtures", "marathon")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("shared/fixtures/marathon not found above the working directory; set EDGEPROXY_SHARED")
		}
		dir = parent
	}
}
