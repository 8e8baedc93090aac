// Command promql checks PromQL expressions with Prometheus' own parser: one expression per
// line of a JSON array on stdin; prints a JSON array of error strings ("" for a valid one).
// The test bed uses it to check the dashboard's, the alerts' and the autoscaler's queries.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "promql: expected a JSON array of strings on stdin:", err)
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	errs := make([]string, len(exprs))
	for i, e := range exprs {
		if _, err := p.ParseExpr(e); err != nil {
			errs[i] = err.Error()
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(errs); err != nil {
		os.Exit(2)
	}
}
