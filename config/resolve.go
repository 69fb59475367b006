package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
)

// resolve expands ${VAR} in every string field of c, then reads the secret
// files into the values they stand for. It returns one problem per key it
// could not resolve.
func (c *Config) resolve() []error {
	var errs []error
	expandStrings(reflect.ValueOf(c).Elem(), "", &errs)

	readSecret(&c.Database.Password, &c.Database.PasswordFile, "database.password_file", &errs)
	readSecret(&c.Server.AuthToken, &c.Server.AuthTokenFile, "server.auth_token_file", &errs)
	for _, name := range slices.Sorted(maps.Keys(c.Targets)) {
		t := c.Targets[name]
		readSecret(&t.AuthToken, &t.AuthTokenFile, "targets."+name+".auth_token_file", &errs)
		c.Targets[name] = t
	}
	return errs
}

// expandStrings applies expand to every string field under v, which must be
// addressable, naming each by its YAML key path.
func expandStrings(v reflect.Value, path string, errs *[]error) {
	switch v.Kind() {
	case reflect.String:
		s, err := expand(v.String())
		if err != nil {
			*errs = append(*errs, problem{path, err.Error()})
			return
		}
		v.SetString(s)
	case reflect.Struct:
		for i := range v.NumField() {
			expandStrings(v.Field(i), joinKey(path, yamlKey(v.Type().Field(i))), errs)
		}
	case reflect.Map:
		// Sorted so the errors come out in the same order on every run.
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			// Map elements are not addressable: expand a copy and store it back.
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			expandStrings(e, joinKey(path, k.String()), errs)
			v.SetMapIndex(k, e)
		}
	}
}

// expand replaces each ${VAR} in s with the value of the environment
// variable VAR, and each $$ with $; any other $ is kept. An unset variable is
// an error; a variable set to "" expands to "". Errors never quote s, which
// may be a secret.
func expand(s string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] != '$':
			b.WriteByte(s[i])
			i++
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i += 2
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New(`"${" without a closing "}" (write $$ for a literal $)`)
			}
			name := s[i+2 : i+2+end]
			if !validVarName(name) {
				return "", errors.New(`"${...}" must hold an environment variable name: letters, digits and _, not starting with a digit (write $$ for a literal $)`)
			}
			val, ok := os.LookupEnv(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(val)
			i += len("${}") + end
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), nil
}

func validVarName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, r := range name {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// readSecret sets *value to the content of the file *file names, trailing
// newlines trimmed, and clears *file. It does nothing when *file is empty,
// or when *value is set too, which Validate reports.
func readSecret(value, file *string, key string, errs *[]error) {
	if *file == "" || *value != "" {
		return
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		*errs = append(*errs, problem{key, fmt.Sprintf("read %q: %v", *file, unwrapPath(err))})
		return
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		*errs = append(*errs, problem{key, fmt.Sprintf("file %q is empty", *file)})
		return
	}
	*value, *file = s, ""
}
