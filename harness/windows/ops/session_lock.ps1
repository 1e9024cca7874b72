# Operation: session_lock
# Facility: LockWorkStation works only from a process on the interactive desktop (WinRM/OpenSSH run in
#   session 0), so a scheduled task with LogonType Interactive (TASK_LOGON_INTERACTIVE_TOKEN: runs only in
#   the user's existing interactive session) runs "rundll32.exe user32.dll,LockWorkStation" there.
#   https://learn.microsoft.com/windows/win32/api/winuser/nf-winuser-lockworkstation
#   https://learn.microsoft.com/windows/win32/api/taskschd/ne-taskschd-task_logon_type
#   https://learn.microsoft.com/powershell/module/scheduledtasks/new-scheduledtaskprincipal
# Facility: Win32_ComputerSystem.UserName (the console user; empty when nobody is logged on)
#   https://learn.microsoft.com/windows/win32/cimwin32prov/win32-computersystem
# Parameters: {}
# Result: {"requested": bool, "task": "HarnessLock"}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
$taskName = 'HarnessLock'
$requested = $false
$user = [string](Get-CimInstance -ClassName Win32_ComputerSystem).UserName
if ($user) {
    # A leftover task from an interrupted run would make Register-ScheduledTask collide.
    Get-ScheduledTask -TaskName $taskName -TaskPath '\' -ErrorAction SilentlyContinue | Unregister-ScheduledTask -Confirm:$false
    $action = New-ScheduledTaskAction -Execute "$env:SystemRoot\System32\rundll32.exe" -Argument 'user32.dll,LockWorkStation'
    $principal = New-ScheduledTaskPrincipal -UserId $user -LogonType Interactive -RunLevel Limited
    $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -ExecutionTimeLimit (New-TimeSpan -Minutes 1)
    [void](Register-ScheduledTask -TaskName $taskName -TaskPath '\' -Action $action -Principal $principal -Settings $settings -Force)
    try {
        Start-ScheduledTask -TaskName $taskName -TaskPath '\'
        # LockWorkStation only initiates the lock; the task has done its part once it ran and finished.
        # 267011 = SCHED_S_TASK_HAS_NOT_RUN, 267009 = SCHED_S_TASK_RUNNING.
        $deadline = [DateTime]::UtcNow.AddSeconds(30)
        while ([DateTime]::UtcNow -lt $deadline) {
            $info = Get-ScheduledTaskInfo -TaskName $taskName -TaskPath '\'
            $state = (Get-ScheduledTask -TaskName $taskName -TaskPath '\').State
            if ($info.LastTaskResult -ne 267011 -and $info.LastTaskResult -ne 267009 -and [string]$state -ne 'Running') {
                $requested = $true
                break
            }
            Start-Sleep -Milliseconds 250
        }
    } finally {
        Unregister-ScheduledTask -TaskName $taskName -TaskPath '\' -Confirm:$false -ErrorAction SilentlyContinue
    }
}
$result = [ordered]@{ requested = $requested; task = $taskName }
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
