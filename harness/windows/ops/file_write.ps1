# Operation: file_write
# Facility: System.IO.FileStream (FileMode Create / Append), System.IO.Directory.CreateDirectory
#   https://learn.microsoft.com/dotnet/api/system.io.filestream
# Facility: fully qualified paths only (drive letter and backslash, or UNC)
#   https://learn.microsoft.com/dotnet/standard/io/file-path-formats
# Parameters: {"path": "C:\\harness\\x.inf", "mode": "create"|"append", "data_base64": "..."}
# Result: {"path", "size": int}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$path = [string]$P.path
# .NET rather than the provider cmdlets: paths with [ ] are not wildcards here. Only fully qualified paths
# (C:\... or \\server\share\...): IsPathRooted also accepts drive-relative "\x" and "C:x", which resolve
# against the shell's current drive and directory (IsPathFullyQualified is not in .NET Framework 4.x).
if ($path -notmatch '^[A-Za-z]:\\|^\\\\') { throw "file_write: path must be absolute: $path" }
$mode = switch ([string]$P.mode) {
    'create' { [IO.FileMode]::Create }
    'append' { [IO.FileMode]::Append }
    default { throw "file_write: unknown mode '$($P.mode)'" }
}
$bytes = [Convert]::FromBase64String([string]$P.data_base64)
$dir = [IO.Path]::GetDirectoryName($path)
if ($dir -and -not [IO.Directory]::Exists($dir)) { [void][IO.Directory]::CreateDirectory($dir) }
$fs = [IO.FileStream]::new($path, $mode, [IO.FileAccess]::Write, [IO.FileShare]::Read)
try {
    $fs.Write($bytes, 0, $bytes.Length)
    $fs.Flush($true)
} finally {
    $fs.Dispose()
}
$result = [ordered]@{
    path = $path
    size = [int64]([IO.FileInfo]::new($path).Length)
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
