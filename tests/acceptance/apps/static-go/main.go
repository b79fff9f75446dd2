// static-go acceptance app: a CGO-free static binary on Alpine serving JSON;
// reads /etc/alpine-release and its own config file at run time.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "18085"
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) {
		rel, err := os.ReadFile("/etc/alpine-release")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		cfg, err := os.ReadFile("/etc/goapp/config.txt")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		words := strings.Fields(string(cfg))
		sort.Strings(words)
		sum := sha256.Sum256(cfg)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"alpine": strings.TrimSpace(string(rel)),
			"words":  words,
			"sha256": hex.EncodeToString(sum[:]),
			"go":     runtime.Version(),
		})
	})
	if err := http.ListenAndServe("0.0.0.0:"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
