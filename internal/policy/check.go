package policy

import (
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// Check returns a config check that compiles every route's allow and
// response_allow rule, reporting each one that does not compile at the path
// "routes[i].allow" or "routes[i].response_allow". env must not be nil.
func Check(env *Env) config.Check {
	return func(c *config.Config) []config.Problem {
		var problems []config.Problem
		for i, r := range c.Routes {
			p := "routes[" + strconv.Itoa(i) + "]"
			if r.Allow != "" {
				if _, msg := env.compile(env.request, r.Allow); msg != "" {
					problems = append(problems, config.Problem{Path: p + ".allow", Message: "invalid rule: " + msg})
				}
			}
			if r.ResponseAllow != "" {
				if _, msg := env.compile(env.response, r.ResponseAllow); msg != "" {
					problems = append(problems, config.Problem{Path: p + ".response_allow", Message: "invalid rule: " + msg})
				}
			}
		}
		return problems
	}
}
