# Operation: ps_parse
# Facility: System.Management.Automation.Language.Parser.ParseInput (the Windows PowerShell 5.1 parser
#   itself: the authoritative syntax check for the scripts the harness is about to run)
#   https://learn.microsoft.com/dotnet/api/system.management.automation.language.parser.parseinput
# Parameters: {"scripts": {"NAME": "text", ...}}
# Result: {"results": {"NAME": [{"line": int, "column": int, "message"}]}} (empty list: parses)
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$results = [ordered]@{}
if ($null -ne $P.scripts) {
    foreach ($entry in $P.scripts.PSObject.Properties) {
        $tokens = $null
        $errors = $null
        [void][System.Management.Automation.Language.Parser]::ParseInput([string]$entry.Value, [ref]$tokens, [ref]$errors)
        $list = New-Object System.Collections.Generic.List[object]
        foreach ($e in @($errors)) {
            if ($null -eq $e) { continue }
            $list.Add([ordered]@{
                    line    = [int]$e.Extent.StartLineNumber
                    column  = [int]$e.Extent.StartColumnNumber
                    message = [string]$e.Message
                })
        }
        $results[[string]$entry.Name] = $list
    }
}
$result = [ordered]@{ results = $results }
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
