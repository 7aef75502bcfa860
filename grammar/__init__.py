"""The grammar of the .ad language, shipped as package data (adcli.lark)."""
