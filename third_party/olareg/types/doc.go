// Package types contains various data types and well known constants.
package types
